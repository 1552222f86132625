using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// The JavaScript client as a typed npm package: clients/js/typecheck.sh packs it (npm pack), installs the tarball
/// into a scratch project and compiles examples/typed-usage.ts (which must compile) and examples/type-errors.ts (whose
/// mistakes must each be a type error) with tsc --strict against the installed package. TypeScript comes from npm,
/// pinned, installed once into a cache by the script itself.
/// </summary>
public class JsTypesTests
{
    // Long enough for the first run's npm install of TypeScript on a slow link; later runs take seconds.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task The_packed_package_types_compile_a_typed_example_under_strict_and_catch_mistakes()
    {
        var script = Path.Combine(RepositoryRoot.Path, "clients", "js", "typecheck.sh");
        var info = new ProcessStartInfo("bash")
        {
            WorkingDirectory = RepositoryRoot.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(script);
        info.Environment["NO_COLOR"] = "1";

        using var process = new Process { StartInfo = info };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            Assert.Fail($"`bash` could not be started ({e.Message}); {script} needs bash, node and npm.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{script} did not finish within {Timeout.TotalMinutes} min; output so far:\n{Output()}");
        }
        process.WaitForExit(); // flush the output events

        Assert.True(process.ExitCode == 0, $"{script} exited with {process.ExitCode}:\n{Output()}");
        // The package carries its declarations, and the compiler really ran (a script that skipped it must not pass).
        Assert.Contains("package/traderoom-client.d.ts", Output(), StringComparison.Ordinal);
        Assert.Contains("typecheck.sh: ok", Output(), StringComparison.Ordinal);

        string Output()
        {
            lock (output)
                return output.ToString();
        }
    }
}

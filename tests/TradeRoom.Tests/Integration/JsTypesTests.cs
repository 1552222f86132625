using System.Diagnostics;
using TradeRoom.Tests.Support;

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
        var info = new ProcessStartInfo("bash") { WorkingDirectory = RepositoryRoot.Path };
        info.ArgumentList.Add(script);
        var (exitCode, output) = await ToolProcess.RunAsync(info, Timeout, $"{script} needs bash, node and npm.");

        Assert.True(exitCode == 0, $"{script} exited with {exitCode}:\n{output}");
        // The package carries its declarations, and the compiler really ran (a script that skipped it must not pass).
        Assert.Contains("package/traderoom-client.d.ts", output, StringComparison.Ordinal);
        Assert.Contains("typecheck.sh: ok", output, StringComparison.Ordinal);
    }
}

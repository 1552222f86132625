using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace TradeRoom.Tests.Support;

/// <summary>Runs an outside tool (node, a script) to its end for a test: its exit code and its output and errors together.</summary>
public static class ToolProcess
{
    /// <summary>Fails the test if the tool cannot start (saying <paramref name="needs"/>) or does not end within <paramref name="timeout"/>.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(ProcessStartInfo info, TimeSpan timeout, string needs)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
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
            Assert.Fail($"`{info.FileName}` could not be started ({e.Message}); {needs}");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"`{info.FileName} {string.Join(' ', info.ArgumentList)}` did not finish within {timeout.TotalSeconds:0} s; output so far:\n{Output()}");
        }
        process.WaitForExit(); // flush the output events
        return (process.ExitCode, Output());

        string Output()
        {
            lock (output)
                return output.ToString();
        }
    }
}

using System.Diagnostics;
using Spectre.Console;

namespace HwGen.Cli;

/// <summary>
/// A transient status line (spinner, what runs, seconds so far) while long work runs: a compile (its exact scheduler may use
/// its whole budget), a simulation, a yosys run. Only on a terminal: when the writer is not the console or the console is
/// redirected (pipes, CI logs, tests) nothing is drawn, and the output is the same as without it.
/// </summary>
public static class StatusLine
{
    public static T Run<T>(TextWriter stdout, string what, Func<T> work)
    {
        if (!ReferenceEquals(stdout, Console.Out) || Console.IsOutputRedirected) return work();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        return console.Status().Spinner(Spinner.Known.Dots).Start(Markup.Escape(what), ctx =>
        {
            var sw = Stopwatch.StartNew();
            using var timer = new Timer(_ => ctx.Status = Markup.Escape($"{what} ({sw.Elapsed.TotalSeconds:F0} s)"), null, 1000, 1000);
            return work();
        });
    }
}

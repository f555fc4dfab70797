using Spectre.Console;

namespace HwGen.Cli.Regress;

/// <summary>Told when each job starts and ends (from the worker threads).</summary>
public interface IRegressProgress
{
    void Started(string id);
    void Finished(CaseResult r);
}

/// <summary>A live display (cases done, running, failed, elapsed, ETA) on a terminal; otherwise one plain line per finished case, no escapes.</summary>
public static class RegressProgress
{
    public static T Run<T>(TextWriter stdout, int total, Func<IRegressProgress, T> work)
    {
        // Tests and pipes pass other writers or redirect the console: no live display then.
        if (!ReferenceEquals(stdout, Console.Out) || Console.IsOutputRedirected || total == 0) return work(new Lines(stdout));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        return console.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => work(new Live(ctx.AddTask(Live.Describe(0, total, 0, 0), maxValue: total), total)));
    }

    sealed class Lines(TextWriter o) : IRegressProgress
    {
        public void Started(string id) { }
        public void Finished(CaseResult r)
        {
            lock (o) o.WriteLine($"{(r.Passed ? "PASS" : "FAIL")} {r.Id}: {(r.Passed ? Reports.FigureLine(r) : r.Failures[0].Message)}");
        }
    }

    sealed class Live(ProgressTask task, int total) : IRegressProgress
    {
        int done, running, failed;

        public static string Describe(int done, int total, int running, int failed) => $"{done}/{total} done, {running} running, {failed} failed";

        public void Started(string id) => Update(0, 1, 0);
        public void Finished(CaseResult r) => Update(1, -1, r.Passed ? 0 : 1);

        void Update(int dDone, int dRunning, int dFailed)
        {
            lock (this)
            {
                done += dDone; running += dRunning; failed += dFailed;
                task.Description = Describe(done, total, running, failed);
                task.Value = done;
            }
        }
    }
}

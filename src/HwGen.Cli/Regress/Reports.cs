using System.Globalization;
using System.Text;
using System.Xml;

namespace HwGen.Cli.Regress;

/// <summary>The human and CI views of a run: a Markdown summary and JUnit XML.</summary>
public static class Reports
{
    /// <summary>A table of every case's figures with their change against the baseline, then each failure. No wall times: the same run
    /// gives the same summary.</summary>
    public static string Markdown(RunResults r)
    {
        var sb = new StringBuilder();
        sb.Append($"# Regression: {r.Suite}\n\n");
        var scope = r.Shard is { } s ? $"shard {s} ({r.Cases.Count} of the suite's {Cases(r.Jobs)})" : Cases(r.Cases.Count);
        sb.Append($"{scope}: {r.Cases.Count - r.Failed} passed, {r.Failed} failed. Baseline: {r.BaselineName ?? "none"}.\n\n");
        var shown = Figures.All.Where(f => r.Cases.Any(c => c.Figures.ContainsKey(f.Key))).ToList();
        sb.Append($"| case | config | result | {string.Join(" | ", shown.Select(f => f.Title))} |\n");
        sb.Append($"|---|---|---|{string.Concat(shown.Select(_ => "---:|"))}\n");
        foreach (var c in r.Cases)
        {
            var cells = shown.Select(f => c.Figures.ContainsKey(f.Key) ? Cell(c, f) : "-");
            sb.Append($"| {c.Case} | {c.Config} | {(c.Passed ? "pass" : "**FAIL**")} | {string.Join(" | ", cells)} |\n");
        }
        var failed = r.Cases.Where(c => !c.Passed).ToList();
        if (failed.Count > 0)
        {
            sb.Append("\n## Failures\n\n");
            foreach (var c in failed)
                foreach (var f in c.Failures) sb.Append($"- `{c.Id}` ({f.Kind.ToString().ToLowerInvariant()}): {f.Message}\n");
        }
        return sb.ToString();
    }

    public static string Cases(int n) => n == 1 ? "1 case" : $"{n} cases";

    /// <summary>A case's figures on one line, with their change against the baseline: "cycles 1,056 (=), off-chip bytes 5,824 (new)".</summary>
    public static string FigureLine(CaseResult c) => string.Join(", ", Figures.All.Where(f => c.Figures.ContainsKey(f.Key)).Select(f =>
        $"{f.Title} {Cell(c, f)}"));

    /// <summary>A figure with its change: "1,056 (+1.2%)", "(new)" when the baseline lacks it.</summary>
    static string Cell(CaseResult c, Figure f)
    {
        var v = c.Figures[f.Key];
        var change = c.Baseline?.TryGetValue(f.Key, out var b) == true ? Figures.Change(f, v, b) : "new";
        return $"{Figures.Format(f, v)} ({change})";
    }

    /// <summary>
    /// JUnit XML: one testsuites, one testsuite named after the suite, one testcase per case (classname suite.case, name config) with its
    /// wall time; a case that did not compile or simulate has an error element, one that mismatched or left a tolerance a failure element,
    /// each with every message as its text. The counts on testsuites and testsuite agree with the elements.
    /// </summary>
    public static string JUnit(RunResults r)
    {
        static string T(double s) => s.ToString("F3", CultureInfo.InvariantCulture);
        int errors = r.Cases.Count(IsError), failures = r.Cases.Count(c => !c.Passed && !IsError(c));
        double time = r.Cases.Sum(c => c.WallSeconds);
        var sb = new StringBuilder();
        using (var w = XmlWriter.Create(sb, new XmlWriterSettings { Indent = true, Encoding = new UTF8Encoding(false), NewLineChars = "\n" }))
        {
            w.WriteStartElement("testsuites");
            w.WriteAttributeString("name", $"hwgen regress {r.Suite}");
            Counts(w, r.Cases.Count, failures, errors, time);
            w.WriteStartElement("testsuite");
            w.WriteAttributeString("name", r.Suite);
            Counts(w, r.Cases.Count, failures, errors, time);
            w.WriteAttributeString("skipped", "0");
            foreach (var c in r.Cases)
            {
                w.WriteStartElement("testcase");
                w.WriteAttributeString("classname", $"{r.Suite}.{c.Case}");
                w.WriteAttributeString("name", c.Config);
                w.WriteAttributeString("time", T(c.WallSeconds));
                if (!c.Passed)
                {
                    var main = IsError(c) ? c.Failures.First(f => f.Kind == FailureKind.Error) : c.Failures[0];
                    w.WriteStartElement(IsError(c) ? "error" : "failure");
                    w.WriteAttributeString("message", main.Message);
                    w.WriteAttributeString("type", main.Kind.ToString().ToLowerInvariant());
                    w.WriteString(string.Join("\n", c.Failures.Select(f => $"{f.Kind.ToString().ToLowerInvariant()}: {f.Message}")));
                    w.WriteEndElement();
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
            w.WriteEndElement();
        }
        return sb.ToString().Replace("encoding=\"utf-16\"", "encoding=\"utf-8\"") + "\n";

        static bool IsError(CaseResult c) => c.Failures.Any(f => f.Kind == FailureKind.Error);
        void Counts(XmlWriter w, int tests, int failed, int errored, double seconds)
        {
            w.WriteAttributeString("tests", tests.ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("failures", failed.ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("errors", errored.ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("time", T(seconds));
        }
    }
}

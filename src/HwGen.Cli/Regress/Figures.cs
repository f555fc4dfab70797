using System.Globalization;

namespace HwGen.Cli.Regress;

/// <summary>A tracked figure: its key (in the figures JSON and in tolerances), its column title, and whether its tolerance is relative
/// (a fraction of the baseline's value) or absolute.</summary>
public sealed record Figure(string Key, string Title, bool Relative);

/// <summary>The figures a regression tracks, and how a new value compares with the baseline's.</summary>
public static class Figures
{
    /// <summary>What each figure means: README, "Regression suites" (a test checks that it names every key).</summary>
    public static IReadOnlyList<Figure> All { get; } =
    [
        new("cycles", "cycles", true),
        new("offChipBytes", "off-chip bytes", true),
        new("accuracy", "accuracy", false),
        new("luts", "LUT", true),
        new("ffs", "FF", true),
        new("dsps", "DSP", true),
    ];

    /// <summary>Every figure must equal its baseline unless the suite allows more: the figures are deterministic.</summary>
    public static IReadOnlyDictionary<string, double> DefaultTolerances { get; } = All.ToDictionary(f => f.Key, _ => 0.0);

    public static Figure Get(string key) => All.First(f => f.Key == key);

    /// <summary>Whether <paramref name="value"/> lies within <paramref name="tolerance"/> of <paramref name="baseline"/>, either way.</summary>
    public static bool Within(Figure f, double value, double baseline, double tolerance) =>
        Math.Abs(value - baseline) <= (f.Relative ? tolerance * Math.Abs(baseline) : tolerance) + 1e-12;

    /// <summary>A value as the summary prints it: integers with thousands separators, accuracy as a percentage.</summary>
    public static string Format(Figure f, double v) =>
        f.Relative ? v.ToString("N0", CultureInfo.InvariantCulture) : (v * 100).ToString("F2", CultureInfo.InvariantCulture) + "%";

    /// <summary>The change from the baseline: "+11.1%" for relative figures, "+0.22 pt" for accuracy, "=" when equal.</summary>
    public static string Change(Figure f, double value, double baseline)
    {
        if (value == baseline) return "=";
        if (!f.Relative) return ((value - baseline) * 100).ToString("+0.00;-0.00", CultureInfo.InvariantCulture) + " pt";
        if (baseline == 0) return "from 0";
        return ((value - baseline) / Math.Abs(baseline) * 100).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%";
    }

    /// <summary>The tolerance as a failure names it: "±2%" or "±0.50 pt".</summary>
    public static string FormatTolerance(Figure f, double t) => f.Relative
        ? "±" + (t * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%"
        : "±" + (t * 100).ToString("0.00", CultureInfo.InvariantCulture) + " pt";

    /// <summary>The failures of figures outside their tolerance against the baseline (figures either side lacks are not compared).</summary>
    public static List<Failure> Compare(IReadOnlyDictionary<string, double> figures, IReadOnlyDictionary<string, double> baseline,
        IReadOnlyDictionary<string, double> tolerances)
    {
        var failures = new List<Failure>();
        foreach (var f in All)
        {
            if (!figures.TryGetValue(f.Key, out var v) || !baseline.TryGetValue(f.Key, out var b)) continue;
            var tol = tolerances.TryGetValue(f.Key, out var t) ? t : 0;
            if (!Within(f, v, b, tol))
                failures.Add(new Failure(FailureKind.Tolerance,
                    $"{f.Key} {Format(f, v)} is {Change(f, v, b)} from the baseline's {Format(f, b)} (tolerance {FormatTolerance(f, tol)})"));
        }
        return failures;
    }
}

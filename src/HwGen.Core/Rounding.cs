namespace HwGen.Core;

/// <summary>
/// How a real number becomes an integer. QONNX's <c>rounding_mode</c> names map here (<see cref="RoundingModes.Parse"/>):
/// ROUND (also HALF_EVEN) half to even, as numpy's round; CEIL; FLOOR; ROUND_TO_ZERO (also DOWN) toward zero; UP away
/// from zero; HALF_UP half away from zero; HALF_DOWN half toward zero.
/// </summary>
public enum Rounding { HalfEven, Ceil, Floor, TowardZero, AwayFromZero, HalfAwayFromZero, HalfTowardZero }

public static class RoundingModes
{
    static readonly Dictionary<string, Rounding> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ROUND"] = Rounding.HalfEven, ["HALF_EVEN"] = Rounding.HalfEven, ["CEIL"] = Rounding.Ceil, ["FLOOR"] = Rounding.Floor,
        ["ROUND_TO_ZERO"] = Rounding.TowardZero, ["DOWN"] = Rounding.TowardZero, ["UP"] = Rounding.AwayFromZero,
        ["HALF_UP"] = Rounding.HalfAwayFromZero, ["HALF_DOWN"] = Rounding.HalfTowardZero,
    };

    /// <summary>The mode a QONNX rounding_mode string names, or null when it names none.</summary>
    public static Rounding? Parse(string name) => Names.TryGetValue(name, out var r) ? r : null;

    /// <summary>The canonical QONNX name of a mode (the one the textual IR prints).</summary>
    public static string Name(this Rounding r) => Names.First(p => p.Value == r).Key;

    public static double Apply(this Rounding r, double v) => r switch
    {
        Rounding.HalfEven => Math.Round(v, MidpointRounding.ToEven),
        Rounding.Ceil => Math.Ceiling(v),
        Rounding.Floor => Math.Floor(v),
        Rounding.TowardZero => Math.Truncate(v),
        Rounding.AwayFromZero => Math.Sign(v) * Math.Ceiling(Math.Abs(v)),
        Rounding.HalfAwayFromZero => Math.Sign(v) * Math.Floor(Math.Abs(v) + 0.5),
        _ => Math.Sign(v) * Math.Ceiling(Math.Abs(v) - 0.5),
    };
}

using System.Globalization;

namespace HwGen.Core.Ir.Text;

/// <summary>An attribute value in textual IR: a number, a string, an identifier or a list.</summary>
public abstract record Attr
{
    public sealed record Num(double Value) : Attr;
    public sealed record Str(string Value) : Attr;
    public sealed record Ident(string Value) : Attr;
    public sealed record List(IReadOnlyList<Attr> Items) : Attr;

    public static Attr Of(long v) => new Num(v);
    public static Attr Of(double v) => new Num(v);
    public static Attr Of(string s) => new Str(s);
    public static Attr Of(IEnumerable<int> v) => new List(v.Select(x => (Attr)new Num(x)).ToArray());
    public static Attr Of(IEnumerable<long> v) => new List(v.Select(x => (Attr)new Num(x)).ToArray());
    public static Attr Of(IEnumerable<double> v) => new List(v.Select(x => (Attr)new Num(x)).ToArray());

    public static string Number(double v) =>
        double.IsPositiveInfinity(v) ? "inf" : double.IsNegativeInfinity(v) ? "-inf" : double.IsNaN(v) ? "nan" : v.ToString("R", CultureInfo.InvariantCulture);

    public sealed override string ToString() => this switch
    {
        Num n => Number(n.Value),
        Str s => "\"" + s.Value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"",
        Ident i => i.Value,
        List l => "[" + string.Join(", ", l.Items) + "]",
        _ => "?",
    };
}

/// <summary>The attributes of one op as parsed, with typed accessors that report what is missing or malformed.</summary>
public sealed class AttrMap(IReadOnlyDictionary<string, Attr> attrs, Func<string, Exception> error)
{
    public bool Has(string key) => attrs.ContainsKey(key);
    Attr Get(string key) => attrs.TryGetValue(key, out var a) ? a : throw error($"missing attribute '{key}'");

    public double Double(string key) => Get(key) is Attr.Num n ? n.Value : throw error($"attribute '{key}' must be a number");

    public int Int(string key)
    {
        double d = Double(key);
        return d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue ? (int)d : throw error($"attribute '{key}' must be an integer");
    }

    public string String(string key) => Get(key) switch
    {
        Attr.Str s => s.Value,
        Attr.Ident i => i.Value,
        _ => throw error($"attribute '{key}' must be a string"),
    };

    public double[] Doubles(string key) => Get(key) is Attr.List l
        ? l.Items.Select(i => i is Attr.Num n ? n.Value : throw error($"attribute '{key}' must be a list of numbers")).ToArray()
        : throw error($"attribute '{key}' must be a list");

    public int[] Ints(string key) => Doubles(key).Select(d => d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue
        ? (int)d : throw error($"attribute '{key}' must be a list of integers")).ToArray();

    /// <summary>A requantizer's clamp, [min, max] (the ops' Check bounds it to int8).</summary>
    public (int Min, int Max) Clamp() => Ints("clamp") is [var lo, var hi] ? (lo, hi) : throw error("attribute 'clamp' must be a list of two integers [min, max]");
}

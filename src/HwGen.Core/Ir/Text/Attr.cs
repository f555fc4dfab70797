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
    public static Attr Of(IEnumerable<string> v) => new List(v.Select(s => (Attr)new Str(s)).ToArray());
    public static Attr Of(IEnumerable<int> v) => new List(v is IReadOnlyList<int> l ? new Numbers<int>(l, x => x) : v.Select(x => (Attr)new Num(x)).ToArray());
    public static Attr Of(IEnumerable<long> v) => new List(v.Select(x => (Attr)new Num(x)).ToArray());
    public static Attr Of(IEnumerable<double> v) => new List(v is IReadOnlyList<double> l ? new Numbers<double>(l, x => x) : v.Select(x => (Attr)new Num(x)).ToArray());

    /// <summary>A list of numbers seen as attributes without copying it (an op's weights: millions of values), each
    /// <see cref="Num"/> made when read.</summary>
    sealed class Numbers<T>(IReadOnlyList<T> values, Func<T, double> toDouble) : IReadOnlyList<Attr>, INumbers
    {
        public object Source => values;
        public double ValueAt(int index) => toDouble(values[index]);
        public Attr this[int index] => new Num(toDouble(values[index]));
        public int Count => values.Count;
        public IEnumerator<Attr> GetEnumerator()
        {
            for (int i = 0; i < values.Count; i++) yield return new Num(toDouble(values[i]));
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>A list whose items are all numbers, readable without an <see cref="Num"/> per value.</summary>
    internal interface INumbers
    {
        int Count { get; }
        double ValueAt(int index);
        /// <summary>The list the numbers are read from.</summary>
        object Source { get; }
    }

    /// <summary>The i-th value of a list of numbers, or null when an item is not a number.</summary>
    internal static Func<int, double>? NumbersOf(List l) =>
        l.Items is INumbers n ? n.ValueAt : l.Items.All(i => i is Num) ? i => ((Num)l.Items[i]).Value : null;

    public static string Number(double v) =>
        double.IsPositiveInfinity(v) ? "inf" : double.IsNegativeInfinity(v) ? "-inf" : double.IsNaN(v) ? "nan" : v.ToString("R", CultureInfo.InvariantCulture);

    public sealed override string ToString() => this switch
    {
        Num n => Number(n.Value),
        Str s => "\"" + s.Value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "\\r") + "\"",
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

    /// <summary>A list of integers as it is held (a constant read from a constants file: its compact form, not copied).</summary>
    public IReadOnlyList<int> IntList(string key) =>
        Get(key) is Attr.List { Items: Attr.INumbers { Source: IReadOnlyList<int> held } } ? held : Ints(key);

    public int[] Ints(string key) => Doubles(key).Select(d => d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue
        ? (int)d : throw error($"attribute '{key}' must be a list of integers")).ToArray();

    public string[] Strings(string key) => Get(key) is Attr.List l
        ? l.Items.Select(i => i is Attr.Str s ? s.Value : throw error($"attribute '{key}' must be a list of strings")).ToArray()
        : throw error($"attribute '{key}' must be a list");

    /// <summary>A requantizer's clamp, [min, max] (the ops' Check bounds it to int8).</summary>
    public (int Min, int Max) Clamp(string key = "clamp") => Ints(key) is [var lo, var hi] ? (lo, hi) : throw error($"attribute '{key}' must be a list of two integers [min, max]");
}

namespace HwGen.Core;

public enum DType { Float32, Float64, Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, Bool }

public static class DTypeInfo
{
    public static bool IsInteger(this DType t) => t is not (DType.Float32 or DType.Float64);

    public static (long Min, long Max) Range(this DType t) => t switch
    {
        DType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
        DType.UInt8 => (byte.MinValue, byte.MaxValue),
        DType.Int16 => (short.MinValue, short.MaxValue),
        DType.UInt16 => (ushort.MinValue, ushort.MaxValue),
        DType.Int32 => (int.MinValue, int.MaxValue),
        DType.UInt32 => (uint.MinValue, uint.MaxValue),
        DType.Bool => (0, 1),
        _ => (long.MinValue, long.MaxValue),
    };

    public static int Bits(this DType t) => t switch
    {
        DType.Int8 or DType.UInt8 or DType.Bool => 8,
        DType.Int16 or DType.UInt16 => 16,
        DType.Int32 or DType.UInt32 or DType.Float32 => 32,
        _ => 64,
    };

    public static bool IsSigned(this DType t) => t is not (DType.UInt8 or DType.UInt16 or DType.UInt32 or DType.Bool);

    public static string Name(this DType t) => t switch
    {
        DType.Float32 => "f32", DType.Float64 => "f64", DType.Int8 => "i8", DType.UInt8 => "u8",
        DType.Int16 => "i16", DType.UInt16 => "u16", DType.Int32 => "i32", DType.UInt32 => "u32",
        DType.Int64 => "i64", _ => "bool",
    };
}

/// <summary>
/// A dense row-major tensor. Values are held as doubles, which represent every float32 and every
/// integer the supported types hold (|v| &lt; 2^53) exactly; float32 arithmetic is emulated by the
/// kernels that need it by rounding through <c>(float)</c>.
/// </summary>
public sealed class Tensor
{
    public DType Type { get; }
    public int[] Shape { get; }
    public double[] Data { get; }

    public Tensor(DType type, int[] shape, double[] data)
    {
        if (data.Length != ShapeUtil.Size(shape))
            throw new ArgumentException($"tensor data has {data.Length} elements, shape [{string.Join(",", shape)}] needs {ShapeUtil.Size(shape)}");
        Type = type;
        Shape = shape;
        Data = data;
    }

    public static Tensor Zeros(DType type, int[] shape) => new(type, shape, new double[ShapeUtil.Size(shape)]);
    public static Tensor Scalar(DType type, double v) => new(type, [], [v]);

    public int Rank => Shape.Length;
    public long Size => Data.Length;
    public Tensor Reshaped(int[] shape) => new(Type, shape, Data);
    public Tensor WithType(DType type) => new(type, Shape, Data);
    /// <summary>The same type and shape, each element through <paramref name="f"/>.</summary>
    public Tensor Map(Func<double, double> f) => new(Type, Shape, Data.Select(f).ToArray());
    public override string ToString() => $"{Type.Name()}[{string.Join("x", Shape)}]";
}

/// <summary>Integers in [-128, 127] held one byte each and read as ints (a layer's int8 weights: 1 byte a parameter).</summary>
public sealed class Int8Values(sbyte[] values) : IReadOnlyList<int>
{
    public int this[int index] => values[index];
    public int Count => values.Length;
    public IEnumerator<int> GetEnumerator()
    {
        foreach (var v in values) yield return v;
    }
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Integers in {-1, 0, 1} held two bits each and read as ints (a ternary layer's weights: a quarter byte a parameter).</summary>
public sealed class TernaryValues : IReadOnlyList<int>
{
    /// <summary>Value i in bits [2(i % 4), +2) of byte i / 4, as value + 1 (0, 1 or 2).</summary>
    readonly byte[] bits;

    public int Count { get; }

    TernaryValues(byte[] bits, int count)
    {
        this.bits = bits;
        Count = count;
    }

    /// <summary>The values packed, or null when one of them is not -1, 0 or 1.</summary>
    public static TernaryValues? TryPack(ReadOnlySpan<sbyte> values)
    {
        var bits = new byte[(values.Length + 3) / 4];
        for (int i = 0; i < values.Length; i++)
        {
            int v = values[i];
            if (v is < -1 or > 1) return null;
            bits[i >> 2] |= (byte)Code(v, i);
        }
        return new TernaryValues(bits, values.Length);
    }

    /// <summary>Values already packed in this layout, or why they are not: a pair of bits that is 3 (no ternary value), or a
    /// bit set past the last value.</summary>
    public static (TernaryValues? Values, string? Why) FromBits(byte[] bits, int count)
    {
        if (bits.Length != (count + 3) / 4) return (null, $"{bits.Length} bytes for {count} ternary values");
        for (int i = 0; i < count; i++)
            if ((bits[i >> 2] >> ((i & 3) * 2) & 3) == 3) return (null, $"value {i} is not a ternary code");
        if ((count & 3) != 0 && bits[^1] >> ((count & 3) * 2) != 0) return (null, "bits past the last ternary code are set");
        return (new(bits, count), null);
    }

    /// <summary>Bits of value <paramref name="v"/> (in {-1, 0, 1}) at position <paramref name="index"/> within its byte.</summary>
    public static int Code(int v, int index) => (v + 1) << ((index & 3) * 2);

    public int this[int index] => (uint)index < (uint)Count ? (bits[index >> 2] >> ((index & 3) * 2) & 3) - 1
        : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<int> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A layer's int8 weights in the smallest form that holds them: two bits each when all are ternary, else a byte each.</summary>
public static class WeightCodes
{
    public static IReadOnlyList<int> Of(sbyte[] values) => TernaryValues.TryPack(values) ?? (IReadOnlyList<int>)new Int8Values(values);
}

public static class ShapeUtil
{
    /// <summary>Activation rows: every dimension but the last (the features) flattened.</summary>
    public static int Rows(IReadOnlyList<int> shape) => shape.Count <= 1 ? 1 : Size(shape.Take(shape.Count - 1).ToArray());

    public static int Size(IReadOnlyList<int> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return checked((int)n);
    }

    public static int[] Strides(IReadOnlyList<int> shape)
    {
        var s = new int[shape.Count];
        int acc = 1;
        for (int i = shape.Count - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    public static string Format(IReadOnlyList<int> shape) => "[" + string.Join("x", shape) + "]";
}

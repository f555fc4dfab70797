namespace HwGen.Core.Ir;

/// <summary>
/// An op on int8 codes computed by a unit of the vector engine: an element-wise table (<see cref="QLut"/>), softmax
/// (<see cref="QSoftmax"/>) or layer normalization (<see cref="QLayerNorm"/>) over the last axis, or a requantization
/// (<see cref="QRequant"/>, no table). The input has
/// per-tensor quantization; the output is int8 with <see cref="OutputQuant"/>. The unit's tables follow from the
/// attributes and the two quantizations (HwGen.Reference.NnLut).
/// </summary>
public abstract record QNonlinear(string Name, Value Input, Value Output) : Op(Name, [Input], Output)
{
    public static readonly int[] SupportedEntries = [8, 16, 32];

    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];
    public required QuantParams OutputQuant { get; init; }
    /// <summary>Table entries (8, 16 or 32), set from the configuration by SelectEngines.</summary>
    public int Entries { get; init; } = 16;

    public override TensorType InferType() => new(DType.Int8, Inputs[0].Type.Shape, OutputQuant);

    /// <summary>Each output element depends on its input element only (one task per tile); otherwise the op reduces
    /// over the last axis (one task per row block).</summary>
    public virtual bool Elementwise => false;

    protected IEnumerable<(string, Text.Attr)> Common()
    {
        yield return ("entries", Text.Attr.Of(Entries));
        if (Engine is not null) yield return ("engine", Text.Attr.Of(Engine));
    }

    public override string? Check()
    {
        var t = Inputs[0].Type;
        if (t.Elem != DType.Int8) return $"input must be i8, got {t.Elem.Name()}";
        if (t.Quant is null || t.Quant.PerChannel) return "input needs per-tensor quantization";
        if (OutputQuant.PerChannel) return "output needs per-tensor quantization";
        if (!SupportedEntries.Contains(Entries)) return $"a table of {Entries} entries is not supported (8, 16 or 32)";
        if (t.Shape.Count == 0) return "input must have at least one dimension";
        return null;
    }
}

/// <summary>An element-wise function of the real value: y = f(x), one table lookup per element.</summary>
public sealed record QLut(string Name, Value Input, Value Output, string Function) : QNonlinear(Name, Input, Output)
{
    /// <summary>Functions an element-wise unit computes (names as in HwGen.Reference.NnLut.Functions).</summary>
    public static readonly string[] Functions = ["gelu", "erf", "sigmoid", "tanh", "silu"];

    public override string Mnemonic => "hw.qlut";
    public override bool Elementwise => true;
    public override IEnumerable<(string, Text.Attr)> Attributes() => Common().Prepend(("function", Text.Attr.Of(Function)));
    public override string? Check() => base.Check() ?? (Functions.Contains(Function) ? null : $"unknown function '{Function}'");
}

/// <summary>
/// Softmax over the last axis; with a <see cref="Mask"/> (the second operand, an attention mask), over the kept positions
/// only: a masked position gets probability exactly 0 (its output is the zero point). The mask is int8 codes, 1 keep and
/// 0 mask, of shape [.., P, N] for rows of N: input row y takes mask row y mod P (P rows: one sequence's, or each head's).
/// </summary>
public sealed record QSoftmax(string Name, Value Input, Value Output) : QNonlinear(Name, Input, Output)
{
    public Value? Mask => Inputs.Count > 1 ? Inputs[1] : null;
    public override string Mnemonic => "hw.qsoftmax";
    public override IEnumerable<(string, Text.Attr)> Attributes() => Common();

    /// <summary>Rows of the mask: the period of input rows it repeats over.</summary>
    public int MaskRows => Mask is { } m ? ShapeUtil.Rows(m.Type.Shape) : 0;

    public static QSoftmax FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a, QuantParams q, string? engine) => operands switch
    {
        [var x] => new(name, x, output) { OutputQuant = q, Entries = a.Int("entries"), Engine = engine },
        [var x, var m] => new(name, x, output) { Inputs = [x, m], OutputQuant = q, Entries = a.Int("entries"), Engine = engine },
        _ => throw new HwGenException($"hw.qsoftmax takes an operand and an optional mask, got {operands.Count} operands"),
    };

    public override string? Check()
    {
        if (base.Check() is { } e || Mask is not { } m) return base.Check();
        var shape = Inputs[0].Type.Shape;
        if (m.Type.Elem != DType.Int8 || m.Type.Shape.Count < 2) return $"the mask must be i8 rows of codes 0 and 1, got {m.Type}";
        if (m.Type.Shape[^1] != shape[^1]) return $"mask rows have {m.Type.Shape[^1]} positions, input rows {shape[^1]}";
        return ShapeUtil.Rows(shape) % MaskRows == 0 ? null : $"the mask's {MaskRows} rows do not repeat over the input's {ShapeUtil.Rows(shape)}";
    }
}

/// <summary>Layer normalization over the last axis: (x - mean) / sqrt(var + Epsilon) * Gamma + Beta.</summary>
public sealed record QLayerNorm(string Name, Value Input, Value Output, double Epsilon, IReadOnlyList<double> Gamma, IReadOnlyList<double> Beta)
    : QNonlinear(Name, Input, Output)
{
    public override string Mnemonic => "hw.qlayernorm";
    public override IEnumerable<(string, Text.Attr)> Attributes() =>
        Common().Concat([("epsilon", Text.Attr.Of(Epsilon)), ("gamma", Text.Attr.Of(Gamma)), ("beta", Text.Attr.Of(Beta))]);

    public override string? Check()
    {
        if (base.Check() is { } e) return e;
        int n = Inputs[0].Type.Shape[^1];
        if (Gamma.Count != n || Beta.Count != n) return $"gamma and beta need {n} entries (the last axis), got {Gamma.Count} and {Beta.Count}";
        return Epsilon >= 0 && double.IsFinite(Epsilon) ? null : $"epsilon {Epsilon} must be finite and not negative";
    }
}

/// <summary>
/// Requantization of int8 codes to new parameters (DequantizeLinear then QuantizeLinear, or a ReLU/Clip between pairs
/// of different parameters): per element y = clamp(Zy + (((x - Zx) * Multiplier + 2^(Shift-1)) >> Shift), ClampMin,
/// ClampMax), a 64-bit product and an arithmetic shift, i.e. round half toward +infinity, the QGemm requantizer's rule
/// (HwGen.Reference.QuantMath.Requantize) on the accumulator x - Zx. <see cref="RealMultiplier"/> is sx/sy, the real
/// number Multiplier·2^-Shift approximates (LegalizeRequant sets both). No table: <see cref="QNonlinear.Entries"/> is unused.
/// </summary>
public sealed record QRequant(string Name, Value Input, Value Output) : QNonlinear(Name, Input, Output)
{
    public required double RealMultiplier { get; init; }
    public int? Multiplier { get; init; }
    public int? Shift { get; init; }
    public required int ClampMin { get; init; }
    public required int ClampMax { get; init; }

    public bool RequantLegalized => Multiplier is not null && Shift is not null;
    public int InputZeroPoint => (int)Inputs[0].Type.Quant!.ZeroPoint;
    public int OutputZeroPoint => (int)OutputQuant.ZeroPoint;

    public override string Mnemonic => "hw.qrequant";
    public override bool Elementwise => true;

    public override IEnumerable<(string, Text.Attr)> Attributes() => RequantSyntax.Attributes(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, Engine);

    /// <summary>Builds a QRequant from its textual form; the output quantization is the result type's.</summary>
    public static QRequant FromText(string name, Value input, Value output, Text.AttrMap a)
    {
        var (lo, hi, real, m, s, engine) = RequantSyntax.Parse(a);
        return new(name, input, output)
        {
            OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qrequant needs a quantized result type"),
            ClampMin = lo, ClampMax = hi, RealMultiplier = real, Multiplier = m, Shift = s, Engine = engine,
        };
    }

    public override string? Check() =>
        base.Check() ?? RequantSyntax.Check(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, 1L << 31, 63);
}

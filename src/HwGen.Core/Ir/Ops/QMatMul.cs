namespace HwGen.Core.Ir;

/// <summary>
/// Product of two int8 activations: Y[M,N] = A[M,K]·B[N,K]ᵀ with <see cref="TransposeB"/> (attention's scores Q·Kᵀ: B is given
/// by rows, as K is stored), else A[M,K]·B[K,N] (attention's P·V), each operand with its own per-tensor quantization,
/// requantized to <see cref="OutputQuant"/>: per element acc = Σ_k (a - Za)(b - Zb) (exact, 32 bits), y = clamp(Zy + ((acc·M + 2^(S-1)) >> S), ClampMin, ClampMax) with M below
/// 2^15 (round half toward +infinity, HwGen.Reference.QuantMath.Requantize's rule). <see cref="RealMultiplier"/> is
/// sa·sb/sy (LegalizeRequant sets M and S).
/// </summary>
public sealed record QMatMul(string Name, Value A, Value B, Value Output) : Op(Name, [A, B], Output)
{
    public required QuantParams OutputQuant { get; init; }
    /// <summary>B is given transposed, by rows of K features (A·Bᵀ); else B is K rows of N features (A·B).</summary>
    public required bool TransposeB { get; init; }
    public required double RealMultiplier { get; init; }
    public int? Multiplier { get; init; }
    public int? Shift { get; init; }
    public required int ClampMin { get; init; }
    public required int ClampMax { get; init; }

    public bool RequantLegalized => Multiplier is not null && Shift is not null;
    public int K => Inputs[0].Type.Shape[^1];
    public int ZeroPointA => (int)Inputs[0].Type.Quant!.ZeroPoint;
    public int ZeroPointB => (int)Inputs[1].Type.Quant!.ZeroPoint;
    public int OutputZeroPoint => (int)OutputQuant.ZeroPoint;

    public override string Mnemonic => "hw.qmatmul";
    /// <summary>Output columns: B's rows (A·Bᵀ) or features (A·B).</summary>
    public int N => TransposeB ? ShapeUtil.Rows(Inputs[1].Type.Shape) : Inputs[1].Type.Shape[^1];
    public override TensorType InferType() => new(DType.Int8, [.. Inputs[0].Type.Shape.SkipLast(1), N], OutputQuant);

    public override IEnumerable<(string, Text.Attr)> Attributes() =>
        RequantSyntax.Attributes(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, Engine).Prepend(("transpose_b", Text.Attr.Of(TransposeB ? 1 : 0)));

    public static QMatMul FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a)
    {
        if (operands is not [var x, var y]) throw new HwGenException($"hw.qmatmul takes two operands, got {operands.Count}");
        var (lo, hi, real, m, s, engine) = RequantSyntax.Parse(a);
        return new(name, x, y, output)
        {
            OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qmatmul needs a quantized result type"),
            TransposeB = a.Int("transpose_b") != 0, ClampMin = lo, ClampMax = hi, RealMultiplier = real, Multiplier = m, Shift = s, Engine = engine,
        };
    }

    public override string? Check()
    {
        for (int i = 0; i < 2; i++)
        {
            var t = Inputs[i].Type;
            string which = i == 0 ? "first" : "second";
            if (RequantSyntax.Int8PerTensor(t, which) is { } why) return why;
            if (t.Shape.Count != 2) return $"{which} operand must be 2-D (rows, features), got {ShapeUtil.Format(t.Shape)}";
        }
        if (TransposeB && Inputs[1].Type.Shape[^1] != K) return $"operands have {K} and {Inputs[1].Type.Shape[^1]} features; A·Bᵀ needs the same";
        if (!TransposeB && Inputs[1].Type.Shape[0] != K) return $"A has {K} features and B {Inputs[1].Type.Shape[0]} rows; A·B needs the same";
        if ((long)K * 255 * 255 > int.MaxValue) return $"a reduction of {K} can overflow the 32-bit accumulator";
        if (OutputQuant.PerChannel) return "output needs per-tensor quantization";
        return RequantSyntax.Check(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, 1L << QAdd.MultiplierBits, QAdd.MaxShift);
    }
}

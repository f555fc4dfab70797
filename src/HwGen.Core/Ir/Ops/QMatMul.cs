namespace HwGen.Core.Ir;

/// <summary>
/// Product of two int8 activations, per sequence of a batch and per attention head, each operand with its own per-tensor
/// quantization, requantized to <see cref="OutputQuant"/>. Rows are the product of the leading dimensions (the
/// scratchpad layout), and the head split and merge of attention are index maps of this op, so no data moves for them:
/// - <see cref="TransposeB"/> (attention's scores Q·Kᵀ): A[.., M, H·dk] and B[.., N, H·dk] give Y[.., H, M, N] (Y[.., M, N] with
///   one head): Y[b, h, m, n] = Σ_k A[b, m, h·dk + k]·B[b, n, h·dk + k]; B is given by rows, as K is stored;
/// - else (attention's P·V): A[.., H, M, K] (A[.., M, K] with one head) and B[.., K, H·dv] give Y[.., M, H·dv]:
///   Y[b, m, h·dv + j] = Σ_k A[b, h, m, k]·B[b, k, h·dv + j].
/// b runs over the sequences of the batch (<see cref="Batch"/>, the product of the leading dimensions), h over the
/// <see cref="Heads"/>. Per element acc = Σ_k (a - Za)(b - Zb) (exact, 32 bits), y = clamp(Zy + ((acc·M + 2^(S-1)) >> S),
/// ClampMin, ClampMax) with M below 2^15 (round half toward +infinity, HwGen.Reference.QuantMath.Requantize's rule).
/// <see cref="RealMultiplier"/> is sa·sb/sy (LegalizeRequant sets M and S).
/// </summary>
public sealed record QMatMul(string Name, Value A, Value B, Value Output) : Op(Name, [A, B], Output)
{
    /// <summary>The operands (always Inputs[0] and Inputs[1], so rewrites of Inputs, such as a requantization folded into the op
    /// that makes an operand, are seen here).</summary>
    public Value A => Inputs[0];
    public Value B => Inputs[1];
    public required QuantParams OutputQuant { get; init; }
    /// <summary>B is given transposed, by rows of K features (A·Bᵀ); else B is K rows of N features (A·B).</summary>
    public required bool TransposeB { get; init; }
    /// <summary>Attention heads: slices of A's and B's features (A·Bᵀ) or of A's rows and B's features (A·B).</summary>
    public int Heads { get; init; } = 1;
    public required double RealMultiplier { get; init; }
    public int? Multiplier { get; init; }
    public int? Shift { get; init; }
    public required int ClampMin { get; init; }
    public required int ClampMax { get; init; }

    public bool RequantLegalized => Multiplier is not null && Shift is not null;
    public int ZeroPointA => (int)Inputs[0].Type.Quant!.ZeroPoint;
    public int ZeroPointB => (int)Inputs[1].Type.Quant!.ZeroPoint;
    public int OutputZeroPoint => (int)OutputQuant.ZeroPoint;

    public override string Mnemonic => "hw.qmatmul";

    IReadOnlyList<int> ShapeA => Inputs[0].Type.Shape;
    IReadOnlyList<int> ShapeB => Inputs[1].Type.Shape;
    /// <summary>A's dimensions before the matrix (and, in A·B with heads, the head) dimensions: the batch's.</summary>
    IReadOnlyList<int> BatchDims => ShapeA.Take(Math.Max(0, ShapeA.Count - (!TransposeB && Heads > 1 ? 3 : 2))).ToArray();
    /// <summary>Sequences: the product of A's leading dimensions.</summary>
    public int Batch => ShapeUtil.Size(BatchDims);
    /// <summary>Rows of a sequence (and head) of A and of the result.</summary>
    public int M => ShapeA.Count < 2 ? 1 : ShapeA[^2];
    /// <summary>The reduction of one head: dk (A·Bᵀ) or B's rows per sequence (A·B).</summary>
    public int K => TransposeB ? ShapeA[^1] / Heads : ShapeA[^1];
    /// <summary>Output columns of one head: B's rows per sequence (A·Bᵀ) or dv (A·B).</summary>
    public int N => TransposeB ? ShapeUtil.Rows(ShapeB) / Math.Max(1, Batch) : ShapeB[^1] / Heads;

    public override TensorType InferType() => new(DType.Int8,
        TransposeB ? [.. BatchDims, .. (Heads > 1 ? new[] { Heads } : []), M, N] : [.. BatchDims, M, Heads * N], OutputQuant);

    public override IEnumerable<(string, Text.Attr)> Attributes()
    {
        var attrs = RequantSyntax.Attributes(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, Engine);
        if (Heads > 1) attrs = attrs.Prepend(("heads", Text.Attr.Of(Heads)));
        return attrs.Prepend(("transpose_b", Text.Attr.Of(TransposeB ? 1 : 0)));
    }

    public static QMatMul FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a)
    {
        if (operands is not [var x, var y]) throw new HwGenException($"hw.qmatmul takes two operands, got {operands.Count}");
        var (lo, hi, real, m, s, engine) = RequantSyntax.Parse(a);
        return new(name, x, y, output)
        {
            OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qmatmul needs a quantized result type"),
            TransposeB = a.Int("transpose_b") != 0, Heads = a.Has("heads") ? a.Int("heads") : 1, ClampMin = lo, ClampMax = hi, RealMultiplier = real, Multiplier = m, Shift = s, Engine = engine,
        };
    }

    public override string? Check()
    {
        for (int i = 0; i < 2; i++)
        {
            var t = Inputs[i].Type;
            string which = i == 0 ? "first" : "second";
            if (RequantSyntax.Int8PerTensor(t, which) is { } why) return why;
            if (t.Shape.Count < 2) return $"{which} operand must have rows and features, got {ShapeUtil.Format(t.Shape)}";
        }
        if (Heads < 1) return $"heads must be at least 1, got {Heads}";
        if (TransposeB)
        {
            if (ShapeA[^1] % Heads != 0) return $"A's {ShapeA[^1]} features do not split into {Heads} heads";
            if (ShapeB[^1] != ShapeA[^1]) return $"operands have {ShapeA[^1]} and {ShapeB[^1]} features; A·Bᵀ needs the same";
            if (ShapeUtil.Rows(ShapeB) % Batch != 0) return $"B's {ShapeUtil.Rows(ShapeB)} rows do not split into A's {Batch} sequences";
        }
        else
        {
            if (Heads > 1 && (ShapeA.Count < 3 || ShapeA[^3] != Heads)) return $"A must be {{.., heads, rows, K}} with {Heads} heads, got {ShapeUtil.Format(ShapeA)}";
            if (ShapeB[^1] % Heads != 0) return $"B's {ShapeB[^1]} features do not split into {Heads} heads";
            if (ShapeUtil.Rows(ShapeB) != (long)Batch * K) return $"A has {K} features and B {ShapeUtil.Rows(ShapeB)} rows; A·B needs {K} rows per sequence, {Batch} sequences";
        }
        if ((long)K * 255 * 255 > int.MaxValue) return $"a reduction of {K} can overflow the 32-bit accumulator";
        if (OutputQuant.PerChannel) return "output needs per-tensor quantization";
        return RequantSyntax.Check(ClampMin, ClampMax, RealMultiplier, Multiplier, Shift, 1L << QAdd.MultiplierBits, QAdd.MaxShift);
    }
}

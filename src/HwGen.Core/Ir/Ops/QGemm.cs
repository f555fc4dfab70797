namespace HwGen.Core.Ir;

/// <summary>
/// Quantized matrix product Y[M,N] = requant(Bias + Σ_k (X[m,k] - Zx) * W[k,n]) on int8 activations and
/// int8 weights with zero point 0 (a non-zero weight zero point is folded into W at import).
/// Requantization per output column n: y = clamp(Zy + ((acc * Multiplier[n] + 2^(Shift[n]-1)) >> Shift[n]), ClampMin, ClampMax),
/// i.e. round half toward +infinity, with a 64-bit product and an arithmetic shift.
/// <see cref="RealMultiplier"/> is the exact sx*sw[n]/sy the integers approximate.
/// </summary>
public sealed record QGemm(string Name, Value Input, Value Output) : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public required int K { get; init; }
    public required int N { get; init; }
    /// <summary>Weights W[k,n], row-major K x N, each in [-128, 127].</summary>
    public required IReadOnlyList<int> Weights { get; init; }
    public required IReadOnlyList<int> Bias { get; init; }
    public required IReadOnlyList<double> RealMultiplier { get; init; }
    public IReadOnlyList<int> Multiplier { get; init; } = [];
    public IReadOnlyList<int> Shift { get; init; } = [];
    public required int InputZeroPoint { get; init; }
    public required int ClampMin { get; init; }
    public required int ClampMax { get; init; }
    public required QuantParams OutputQuant { get; init; }
    /// <summary>Engine chosen by SelectEngines (null before).</summary>
    public string? Engine { get; init; }
    /// <summary>Tiling onto the engine, set by TileToEngine (null before).</summary>
    public GemmTiling? Tiling { get; init; }

    public int OutputZeroPoint => (int)OutputQuant.ZeroPoint;
    public bool RequantLegalized => Multiplier.Count == N && Shift.Count == N;

    public override string Mnemonic => "hw.qgemm";

    public override TensorType InferType()
    {
        var s = Inputs[0].Type.Shape;
        return new TensorType(DType.Int8, [.. s.Take(s.Count - 1), N], OutputQuant);
    }

    public override IEnumerable<(string, string)> Attributes()
    {
        yield return ("k", K.ToString());
        yield return ("n", N.ToString());
        yield return ("zx", InputZeroPoint.ToString());
        yield return ("clamp", $"[{ClampMin},{ClampMax}]");
        if (RequantLegalized) yield return ("shift", $"[{Shift.Min()}..{Shift.Max()}]");
        if (Engine is not null) yield return ("engine", Engine);
        if (Tiling is not null) yield return ("tiles", $"{Tiling.RowBlocks}x{Tiling.ColTiles} of {Tiling.Rows}x{Tiling.Cols}");
    }

    public override string? Check()
    {
        var t = Inputs[0].Type;
        if (t.Elem != DType.Int8) return $"input must be i8, got {t.Elem.Name()}";
        if (t.Shape.Count < 1 || t.Shape[^1] != K) return $"input shape {ShapeUtil.Format(t.Shape)} does not end in K={K}";
        if (Weights.Count != K * N) return $"weights hold {Weights.Count} values, K*N = {K * N}";
        if (Weights.Any(w => w is < -128 or > 127)) return "a weight is outside [-128, 127]";
        if (Bias.Count != N || RealMultiplier.Count != N) return "bias and multipliers need one entry per output column";
        if (InputZeroPoint is < -128 or > 127) return $"input zero point {InputZeroPoint} is outside int8";
        if (ClampMin > ClampMax || ClampMin < -128 || ClampMax > 127) return $"clamp [{ClampMin},{ClampMax}] is not inside int8";
        if (Multiplier.Count != 0 && !RequantLegalized) return "requantization multipliers and shifts need one entry per column";
        if (RequantLegalized && (Shift.Any(s => s is < 1 or > 63) || Multiplier.Any(m => m < 0)))
            return "requantization shift must be in [1, 63] and multiplier non-negative";
        return null;
    }
}

/// <summary>How a QGemm maps onto a Rows x Cols array: RowBlocks blocks of activation rows times ColTiles column tiles.</summary>
public sealed record GemmTiling(int Rows, int Cols, int RowBlocks, int ColTiles);

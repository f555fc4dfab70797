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
    /// <summary>G of the table-lookup ternary engine when the op runs there (its weights, all in {-1, 0, 1}, packed in groups of G);
    /// 0 otherwise.</summary>
    public int TableGroup { get; init; }
    /// <summary>The groups of the bit-serial mixture-of-datatype engine (BitMoD) when the op runs there: <see cref="Weights"/> then
    /// hold each weight's value in its group's datatype; null otherwise.</summary>
    public WeightGroups? Groups { get; init; }
    /// <summary>The bit width of the QONNX quantizer the weights came from (1 for BipolarQuant); 0 when not from QONNX.</summary>
    public int QonnxBits { get; init; }
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

    public override IEnumerable<(string, Text.Attr)> Attributes()
    {
        yield return ("k", Text.Attr.Of(K));
        yield return ("n", Text.Attr.Of(N));
        yield return ("zx", Text.Attr.Of(InputZeroPoint));
        yield return ("clamp", Text.Attr.Of([ClampMin, ClampMax]));
        if (Engine is not null) yield return ("engine", Text.Attr.Of(Engine));
        if (TableGroup != 0) yield return ("table_group", Text.Attr.Of(TableGroup));
        if (QonnxBits != 0) yield return ("qonnx_bits", Text.Attr.Of(QonnxBits));
        if (Groups is { } gr)
        {
            yield return ("groups", Text.Attr.Of([gr.Bits, gr.Size, gr.ScaleBits]));
            yield return ("group_types", Text.Attr.Of(gr.Types));
            yield return ("group_scales", Text.Attr.Of(gr.Scales));
            yield return ("group_error", Text.Attr.Of([gr.RelativeMse, gr.RelativeMax]));
        }
        if (Tiling is not null) yield return ("tiles", Text.Attr.Of([Tiling.Rows, Tiling.Cols, Tiling.RowBlocks, Tiling.ColTiles]));
        yield return ("real_multiplier", Text.Attr.Of(RealMultiplier));
        if (RequantLegalized)
        {
            yield return ("multiplier", Text.Attr.Of(Multiplier));
            yield return ("shift", Text.Attr.Of(Shift));
        }
        yield return ("bias", Text.Attr.Of(Bias));
        yield return ("weights", Text.Attr.Of(Weights));
    }

    /// <summary>Builds a QGemm from its textual form; the output quantization is the result type's.</summary>
    public static QGemm FromText(string name, Value input, Value output, Text.AttrMap a) => new(name, input, output)
    {
        K = a.Int("k"), N = a.Int("n"), InputZeroPoint = a.Int("zx"),
        ClampMin = a.Clamp().Min, ClampMax = a.Clamp().Max,
        Engine = a.Has("engine") ? a.String("engine") : null,
        TableGroup = a.Has("table_group") ? a.Int("table_group") : 0,
        QonnxBits = a.Has("qonnx_bits") ? a.Int("qonnx_bits") : 0,
        Groups = a.Has("groups") && a.Ints("groups") is [var bits, var size, var sb] && a.Doubles("group_error") is [var mse, var max]
            ? new WeightGroups(bits, size, sb, a.Ints("group_types"), a.Ints("group_scales"), mse, max) : null,
        Tiling = a.Has("tiles") && a.Ints("tiles") is [var r, var c, var rb, var ct] ? new GemmTiling(r, c, rb, ct) : null,
        RealMultiplier = a.Doubles("real_multiplier"),
        Multiplier = a.Has("multiplier") ? a.Ints("multiplier") : [],
        Shift = a.Has("shift") ? a.Ints("shift") : [],
        Bias = a.Ints("bias"), Weights = a.IntList("weights"),
        OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qgemm needs a quantized result type"),
    };

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
        if (TableGroup != 0 && Weights.Any(w => w is < -1 or > 1)) return $"table group {TableGroup} needs weights in {{-1, 0, 1}}";
        if (Groups is { } g && (g.Size < 1 || g.Types.Count != (K + g.Size - 1) / g.Size * N || g.Scales.Count != g.Types.Count))
            return $"weight groups of {g.Size} need one datatype and one scale per group and column";
        if (Groups is { } h && (h.Bits is not (3 or 4) || h.ScaleBits is < 1 or > 16 || h.Types.Any(t => t is < 0 or > 4) || h.Scales.Any(s => s < 0 || s >= 1 << h.ScaleBits)))
            return $"weight groups need 3 or 4 bits, datatype ids 0-4 and scales of {h.ScaleBits} unsigned bits";
        if (Multiplier.Count != 0 && !RequantLegalized) return "requantization multipliers and shifts need one entry per column";
        if (RequantLegalized && (Shift.Any(s => s is < 1 or > 63) || Multiplier.Any(m => m < 0)))
            return "requantization shift must be in [1, 63] and multiplier non-negative";
        return null;
    }
}

/// <summary>
/// Per-group datatypes and integer scales of a QGemm's weights (the BitMoD engine): groups of <see cref="Size"/> weights along K,
/// per group g and column n (index g·N + n) a datatype id (<see cref="Types"/>, of <see cref="Bits"/>-bit codes) and an unsigned
/// scale of <see cref="ScaleBits"/> bits; the accumulator is bias + Σ_g Scales[g, n] · Σ_(k in g) (x[k] - zx) · W[k, n]. The
/// quantization error against the weights it came from: mean square and largest error, relative to the weights' mean square and
/// largest magnitude.
/// </summary>
public sealed record WeightGroups(int Bits, int Size, int ScaleBits, IReadOnlyList<int> Types, IReadOnlyList<int> Scales, double RelativeMse, double RelativeMax);

/// <summary>How a QGemm maps onto a Rows x Cols array: RowBlocks blocks of activation rows times ColTiles column tiles.</summary>
public sealed record GemmTiling(int Rows, int Cols, int RowBlocks, int ColTiles);

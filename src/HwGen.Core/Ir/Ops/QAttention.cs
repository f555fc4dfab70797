namespace HwGen.Core.Ir;

/// <summary>One requantizer of <see cref="QAttention"/>: clamp, real multiplier, integer multiplier and shift (QMatMul's rule).</summary>
public sealed record AttentionRequant(int ClampMin, int ClampMax, double Real, int Multiplier, int Shift)
{
    public IEnumerable<(string, Text.Attr)> Attributes(string prefix) => RequantSyntax.Attributes(ClampMin, ClampMax, Real, Multiplier, Shift, null, prefix);

    public static AttentionRequant Parse(Text.AttrMap a, string prefix, string op)
    {
        var (lo, hi, real, m, s, _) = RequantSyntax.Parse(a, prefix);
        return m is { } mm && s is { } ss ? new(lo, hi, real, mm, ss)
            : throw new HwGenException($"op '{op}': hw.qattention needs {prefix}multiplier and {prefix}shift");
    }

    /// <summary>Why it is invalid, or null; the bounds of an activation product's requantizer unless given (a score scale
    /// takes <see cref="QRequant"/>'s).</summary>
    public string? Check(long multiplierEnd = 1L << QAdd.MultiplierBits, int maxShift = QAdd.MaxShift) =>
        RequantSyntax.Check(ClampMin, ClampMax, Real, Multiplier, Shift, multiplierEnd, maxShift);
}

/// <summary>
/// Sparse attention of one layer: per sequence b, head h and query row i, scores only at the columns j the head's mask keeps
/// (<see cref="AttentionMask.Columns"/>), s_j = requant_qk(Σ_t (q[b,i,h·dk+t] - Zq)(k[b,j,h·dk+t] - Zk)) as
/// <see cref="ScoreQuant"/> codes; p = the softmax unit over those scores (NN-LUT exp and reciprocal, <see cref="Entries"/>
/// entries, output <see cref="ProbQuant"/>); y[b,i,h·dv+c] = requant_pv(Σ_j (p_j - Zp)(v[b,j,h·dv+c] - Zv)). It is the masked dense
/// attention <c>hw.qmatmul</c> (Q·Kᵀ) → <c>hw.qsoftmax</c> (mask) → <c>hw.qmatmul</c> (P·V) with the same mask, computed only at
/// the mask's non-zeros: a masked probability is exactly the zero point there and adds nothing to P·V. With a score scale
/// (<see cref="ScaleRequant"/>, the <c>hw.qrequant</c> a scaled Q·Kᵀ imports as), the product is requantized to
/// <see cref="RawScoreQuant"/> first and each score then by it, s = requant_scale(raw - Zraw), to <see cref="ScoreQuant"/>.
/// Q is [.., M, H·dk], K [.., N, H·dk] and V [.., N, H·dv] by rows (the activation layout), the result [.., M, H·dv].
/// <see cref="Masks"/> holds one mask for every head or one per head, each of M rows over N columns.
/// </summary>
public sealed record QAttention(string Name, Value Q, Value K, Value V, Value Output) : Op(Name, [Q, K, V], Output)
{
    public int Heads { get; init; } = 1;
    public required IReadOnlyList<AttentionMask> Masks { get; init; }
    public required QuantParams ScoreQuant { get; init; }
    public required QuantParams ProbQuant { get; init; }
    public required QuantParams OutputQuant { get; init; }
    public required AttentionRequant QkRequant { get; init; }
    public required AttentionRequant PvRequant { get; init; }
    /// <summary>The scores' requantization after the product (a <c>hw.qrequant</c> between Q·Kᵀ and the softmax), with the
    /// product's quantization <see cref="RawScoreQuant"/>; null without one.</summary>
    public AttentionRequant? ScaleRequant { get; init; }
    public QuantParams? RawScoreQuant { get; init; }
    /// <summary>Entries of the softmax unit's tables.</summary>
    public int Entries { get; init; } = 16;

    public override string Mnemonic => "hw.qattention";

    IReadOnlyList<int> ShapeQ => Inputs[0].Type.Shape;
    public int ZeroPoint(int operand) => (int)Inputs[operand].Type.Quant!.ZeroPoint;
    /// <summary>Sequences: the product of Q's leading dimensions.</summary>
    public int Batch => ShapeUtil.Size(ShapeQ.Take(ShapeQ.Count - 2).ToArray());
    public int M => ShapeQ[^2];
    public int N => ShapeUtil.Rows(Inputs[1].Type.Shape) / Math.Max(1, Batch);
    public int Dk => ShapeQ[^1] / Heads;
    public int Dv => Inputs[2].Type.Shape[^1] / Heads;
    public AttentionMask MaskOf(int head) => Masks.Count == 1 ? Masks[0] : Masks[head];

    public override TensorType InferType() => new(DType.Int8, [.. ShapeQ.Take(ShapeQ.Count - 2), M, Heads * Dv], OutputQuant);

    public override IEnumerable<(string, Text.Attr)> Attributes()
    {
        IEnumerable<(string, Text.Attr)> attrs =
        [
            ("heads", Text.Attr.Of(Heads)),
            ("masks", Text.Attr.Of(Masks.Select(m => m.ToString()))),
            ("entries", Text.Attr.Of(Entries)),
            ("score_quant", Text.Attr.Of([ScoreQuant.Scale, ScoreQuant.ZeroPoint])),
            ("prob_quant", Text.Attr.Of([ProbQuant.Scale, ProbQuant.ZeroPoint])),
        ];
        attrs = attrs.Concat(QkRequant.Attributes("qk_"));
        if (ScaleRequant is { } sc && RawScoreQuant is { } raw)
            attrs = attrs.Append(("raw_score_quant", Text.Attr.Of([raw.Scale, raw.ZeroPoint]))).Concat(sc.Attributes("scale_"));
        attrs = attrs.Concat(PvRequant.Attributes("pv_"));
        return Engine is null ? attrs : attrs.Append(("engine", Text.Attr.Of(Engine)));
    }

    public static QAttention FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a)
    {
        if (operands is not [var q, var k, var v]) throw new HwGenException($"hw.qattention takes three operands (Q, K, V), got {operands.Count}");
        QuantParams Quant(string key) => a.Doubles(key) is [var s, var z] && z == Math.Floor(z)
            ? QuantParams.PerTensor(s, (long)z) : throw new HwGenException($"op '{name}': attribute '{key}' must be [scale, zero point]");
        return new(name, q, k, v, output)
        {
            Heads = a.Int("heads"),
            Masks = a.Strings("masks").Select(AttentionMask.Parse).ToArray(),
            Entries = a.Int("entries"),
            ScoreQuant = Quant("score_quant"),
            ProbQuant = Quant("prob_quant"),
            OutputQuant = output.Type.Quant ?? throw new HwGenException($"op '{name}': hw.qattention needs a quantized result type"),
            QkRequant = AttentionRequant.Parse(a, "qk_", name),
            PvRequant = AttentionRequant.Parse(a, "pv_", name),
            ScaleRequant = a.Has("scale_clamp") ? AttentionRequant.Parse(a, "scale_", name) : null,
            RawScoreQuant = a.Has("raw_score_quant") ? Quant("raw_score_quant") : null,
            Engine = a.Has("engine") ? a.String("engine") : null,
        };
    }

    public override string? Check()
    {
        string[] which = ["Q", "K", "V"];
        for (int i = 0; i < 3; i++)
        {
            var t = Inputs[i].Type;
            if (RequantSyntax.Int8PerTensor(t, which[i]) is { } why) return why;
            if (t.Shape.Count < 2) return $"{which[i]} must have rows and features, got {ShapeUtil.Format(t.Shape)}";
        }
        if (Heads < 1) return $"heads must be at least 1, got {Heads}";
        var (k, v) = (Inputs[1].Type.Shape, Inputs[2].Type.Shape);
        if (ShapeQ[^1] % Heads != 0 || v[^1] % Heads != 0) return $"Q's {ShapeQ[^1]} and V's {v[^1]} features do not split into {Heads} heads";
        if (k[^1] != ShapeQ[^1]) return $"Q has {ShapeQ[^1]} features and K {k[^1]}; Q·Kᵀ needs the same";
        if (ShapeUtil.Rows(k) % Batch != 0) return $"K's {ShapeUtil.Rows(k)} rows do not split into Q's {Batch} sequences";
        if (ShapeUtil.Rows(v) != ShapeUtil.Rows(k)) return $"V has {ShapeUtil.Rows(v)} rows and K {ShapeUtil.Rows(k)}; P·V needs one value row per key";
        if ((long)Math.Max(Dk, N) * 255 * 255 > int.MaxValue) return $"a reduction of {Math.Max(Dk, N)} can overflow the 32-bit accumulator";
        if (!QNonlinear.SupportedEntries.Contains(Entries)) return $"a table of {Entries} entries is not supported (8, 16 or 32)";
        if ((ScaleRequant is null) != (RawScoreQuant is null)) return "a score scale needs raw_score_quant and its requantizer (scale_...) together";
        foreach (var (q, key) in new[] { (ScoreQuant, "score"), (ProbQuant, "probability"), (OutputQuant, "output"), (RawScoreQuant ?? ScoreQuant, "raw score") })
            if (q.PerChannel || q.ZeroPoint is < -128 or > 127 || !(q.Scale > 0)) return $"the {key} quantization must be per tensor, int8, with a positive scale";
        if (Masks.Count != 1 && Masks.Count != Heads) return $"{Masks.Count} masks for {Heads} heads: give one for every head or one per head";
        for (int h = 0; h < Masks.Count; h++)
            if (Masks[h].Check(M, N) is { } why) return $"{(Masks.Count == 1 ? "every head" : $"head {h}")}: {why}";
        return QkRequant.Check() is { } e ? "qk: " + e : PvRequant.Check() is { } f ? "pv: " + f
            : ScaleRequant?.Check(1L << 31, 63) is { } g ? "scale: " + g : null;
    }
}

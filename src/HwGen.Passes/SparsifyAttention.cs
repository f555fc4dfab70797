using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// Makes each attention layer the config's <c>sparseAttention</c> names one <c>hw.qattention</c>: the chain Q·Kᵀ
/// (<c>hw.qmatmul</c>, transpose_b, and the score scale's <c>hw.qrequant</c> when there is one) → <c>hw.qsoftmax</c> (with or without the model's mask) → P·V (<c>hw.qmatmul</c>) whose
/// scores and probabilities have no other use, named by its softmax. Each head's mask comes from the config entry: <c>model</c>
/// (the model's additive mask constant described by <see cref="AttentionMask.FromKeep"/>: Λ when its pattern is one, else CSR;
/// dense without one), <c>vitcod(theta=θ)</c> (ViTCoD's split of that mask) or a mask's text, which replaces the model's. The
/// outputs are unchanged when the mask is the model's (the sparse kernel equals the masked dense one). A bad entry or mask is
/// one error naming the layer and head.
/// </summary>
public sealed class SparsifyAttention : IPass
{
    public string Name => nameof(SparsifyAttention);

    /// <summary>The config's entries: layer (a softmax's name or <c>*</c>) and the heads' mask texts.</summary>
    public static IReadOnlyList<(string Layer, string[] Masks)> Entries(HwConfig c) =>
        c.SparseAttention.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.Split('=', 2, StringSplitOptions.TrimEntries) is [var layer, var masks]
                ? (layer, masks.Split('/', StringSplitOptions.TrimEntries))
                : throw new HwGenException($"sparseAttention entry '{e}' is not LAYER=MASK"))
            .ToList();

    public void Run(Graph graph, HwConfig config)
    {
        var entries = Entries(config);
        if (entries.Count == 0) return;
        var softmaxes = graph.Ops.OfType<QSoftmax>().ToList();
        HwGen.Rtl.Program.LayerSubset.CheckNames("sparseAttention", entries.Select(e => e.Layer).Where(l => l != "*"), softmaxes.Select(s => s.Name).ToList());
        foreach (var sm in softmaxes)
        {
            var entry = entries.FirstOrDefault(e => e.Layer == sm.Name) is { Layer: not null } named ? named : entries.FirstOrDefault(e => e.Layer == "*");
            if (entry.Layer is null) continue;
            if (Chain(graph, sm) is not var (scores, scale, pv))
            {
                if (entry.Layer == "*") continue;
                throw new HwGenException($"layer '{sm.Name}': sparse attention needs the softmax between a Q·Kᵀ product and a P·V product with the same heads, " +
                    "its scores and probabilities used only there");
            }
            Replace(graph, sm, scores, scale, pv, entry.Masks);
        }
    }

    /// <summary>Q·Kᵀ before the softmax (and the score scale between them, a <c>hw.qrequant</c>, when there is one) and P·V after
    /// it, or null when the softmax is not between them alone.</summary>
    static (QMatMul Scores, QRequant? Scale, QMatMul Pv)? Chain(Graph g, QSoftmax sm)
    {
        var scale = g.ProducerOf(sm.Input) as QRequant;
        if (scale is not null && (g.UseCount(scale.Output) != 1 || !scale.RequantLegalized)) return null;
        return g.ProducerOf(scale?.Input ?? sm.Input) is QMatMul { TransposeB: true } s && g.UseCount(s.Output) == 1 && g.UseCount(sm.Output) == 1
            && g.UsersOf(sm.Output).Single() is QMatMul { TransposeB: false } pv && pv.Inputs[0] == sm.Output && pv.Heads == s.Heads
            && s.RequantLegalized && pv.RequantLegalized
                ? (s, scale, pv) : null;
    }

    static void Replace(Graph g, QSoftmax sm, QMatMul s, QRequant? scale, QMatMul pv, string[] texts)
    {
        int heads = s.Heads, m = s.M, n = s.N;
        if (texts.Length != 1 && texts.Length != heads)
            throw new HwGenException($"layer '{sm.Name}': sparseAttention gives {texts.Length} masks for {heads} heads (one for every head or one per head)");
        var constant = sm.Mask is { } mv ? g.ProducerOf(mv) as QConstant : null;
        // One text that does not read the model's mask is one mask for every head; else each head has its own.
        bool shared = texts.Length == 1 && texts[0] != "model" && !IsSplit(texts[0]);
        var masks = new AttentionMask[shared ? 1 : heads];
        for (int h = 0; h < masks.Length; h++)
        {
            string text = texts[texts.Length == 1 ? 0 : h];
            string where = shared || heads == 1 ? $"layer '{sm.Name}'" : $"layer '{sm.Name}' head {h}";
            AttentionMask mask;
            try
            {
                mask = text == "model" ? AttentionMask.FromKeep(ModelKeep(sm, constant, h, m, n), m, n)
                    : IsSplit(text) ? Split(text, AttentionMask.FromKeep(ModelKeep(sm, constant, h, m, n), m, n), m, n)
                    : AttentionMask.Parse(text);
            }
            catch (HwGenException e) { throw new HwGenException($"{where}: {e.Message}"); }
            if (mask.Check(m, n) is { } why) throw new HwGenException($"{where}: {why}");
            masks[h] = mask;
        }
        var attention = new QAttention(sm.Name, s.Inputs[0], s.Inputs[1], pv.Inputs[1], pv.Output)
        {
            Heads = heads,
            Masks = masks.Select(x => x.ToString()).Distinct().Count() == 1 ? [masks[0]] : masks,
            ScoreQuant = sm.Input.Type.Quant!,
            ProbQuant = sm.OutputQuant,
            OutputQuant = pv.OutputQuant,
            Entries = sm.Entries,
            QkRequant = new(s.ClampMin, s.ClampMax, s.RealMultiplier, s.Multiplier!.Value, s.Shift!.Value),
            PvRequant = new(pv.ClampMin, pv.ClampMax, pv.RealMultiplier, pv.Multiplier!.Value, pv.Shift!.Value),
            ScaleRequant = scale is null ? null : new(scale.ClampMin, scale.ClampMax, scale.RealMultiplier, scale.Multiplier!.Value, scale.Shift!.Value),
            RawScoreQuant = scale is null ? null : s.OutputQuant,
        };
        g.Replace(pv, attention);
        g.Ops.Remove(sm);
        if (scale is not null) g.Ops.Remove(scale);
        g.Ops.Remove(s);
        if (constant is not null && g.UseCount(constant.Output) == 0) g.Ops.Remove(constant);
    }

    /// <summary>Head <paramref name="h"/>'s keep flags from the model's mask constant (rows repeat with its period: one
    /// sequence's rows, shared by the heads, or each head's); every position without one.</summary>
    static bool[] ModelKeep(QSoftmax sm, QConstant? constant, int h, int m, int n)
    {
        if (sm.Mask is null) return Enumerable.Repeat(true, m * n).ToArray();
        if (constant is null) throw new HwGenException("the softmax's mask is no constant");
        int rows = sm.MaskRows;
        if (rows != m && rows % m != 0)
            throw new HwGenException($"the model's mask has {rows} rows, not a multiple of the sequence's {m}");
        int first = h * m % rows * n;
        return constant.Codes.Skip(first).Take(m * n).Select(c => c != 0).ToArray();
    }

    /// <summary>Whether a config mask is ViTCoD's split of the model's mask (<c>vitcod(theta=θ)</c>, no columns of its own).</summary>
    static bool IsSplit(string text) => text.StartsWith("vitcod") && !text.Contains("dense");

    /// <summary>ViTCoD's split <c>vitcod(theta=θ)</c> of the model's mask.</summary>
    static AttentionMask Split(string text, AttentionMask model, int m, int n)
    {
        var body = text["vitcod".Length..].Trim();
        var parts = body.StartsWith('(') && body.EndsWith(')') ? body[1..^1].Split('=', StringSplitOptions.TrimEntries) : [];
        if (parts is not ["theta", var t] || !double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double theta))
            throw new HwGenException($"'{text}' is no mask (a split of the model's mask is vitcod(theta=θ))");
        if (!(theta >= 0 && theta <= 1)) throw new HwGenException($"ViTCoD θ {t} is outside [0, 1]");
        return AttentionMask.Split(model, theta, m, n);
    }
}

using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// Attention: matrix products of two activations (Q·Kᵀ, P·V), the Reshape/Transpose chains that split an activation
/// [.., T, D] into heads [.., H, T, dh] (and K into [.., H, dh, T]) and merge them back, and mean pooling over tokens.
/// Layout changes move no data: a split or transposed activation is a <see cref="LayoutView"/> of the value as stored
/// (rows of tokens, D features), and the hw.qmatmul that reads it addresses the head's features and reads K by rows.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    /// <summary>
    /// An activation <paramref name="V"/> (stored [.., T, D]) seen in another layout: leading dimensions <paramref name="Batch"/>,
    /// then the axes in <paramref name="Axes"/>, each a letter: 't' tokens, 'h' heads, 'd' a head's D/H features. "thd" is
    /// the Reshape that splits the features, "htd" the heads of Q and V, "hdt" of Kᵀ, "dt" the transpose of an activation.
    /// <paramref name="OnnxType"/> is set between a QuantizeLinear and its DequantizeLinear (the QDQ pair ONNX Runtime's
    /// quantizer writes around a Reshape or Transpose), null for the real view.
    /// </summary>
    /// <paramref name="Torch"/>: the layout of torch's nn.MultiheadAttention, which splits the heads of a sequence-first view
    /// [T, B, D] as [T, B·H, dh]: the batch and the heads are one axis ('h' stands for B·H) and there are no leading dimensions
    /// ("thd" [T, B·H, dh], "htd" [B·H, T, dh], "hdt" [B·H, dh, T]); the element order of "htd" and "hdt" is the canonical one.
    sealed record LayoutView(Value V, int[] Batch, string Axes, int Heads, DType? OnnxType, bool Torch = false) : Abs
    {
        public int Tokens => ShapeUtil.Rows(V.Type.Shape) / Math.Max(1, ShapeUtil.Size(Batch));
        public int HeadDim => V.Type.Shape[^1] / Heads;
        public int[] Shape => Torch ? Axes.Select(a => a switch { 't' => Tokens, 'h' => ShapeUtil.Size(Batch) * Heads, _ => HeadDim }).ToArray()
            : [.. Batch, .. Axes.Select(a => a switch { 't' => Tokens, 'h' => Heads, _ => HeadDim })];
    }

    /// <summary>A·Bᵀ (<paramref name="TransposeB"/>) or A·B of two dequantized activations over <paramref name="Heads"/> heads, times
    /// <paramref name="Factor"/> (a Mul or Div by a positive scalar after it: attention's 1/sqrt(d)), waiting for its
    /// QuantizeLinear. <paramref name="Merged"/>: the result is stored with its heads' features side by side (P·V with heads)
    /// and ONNX sees it split ("htd"); else <paramref name="Shape"/> is the result's ONNX shape when it differs from the stored
    /// one in unit axes only (one head's [.., 1, T, T], ReduceMean with keepdims 0).</summary>
    sealed record PendingActMatMul(Value A, Value B, bool TransposeB, double Lo, double Hi, string Node, double Factor = 1, int Heads = 1,
        bool Merged = false, int[]? Shape = null, bool Torch = false) : Abs;

    /// <summary>The view of a dequantized activation or of a layout view (real or quantized), with its ONNX shape, or null.</summary>
    static LayoutView? AsLayout(Abs? a) => a switch
    {
        LayoutView lv => lv,
        RealView rv when rv.V.Type.Shape.Count >= 2 => new LayoutView(rv.V, rv.V.Type.Shape.SkipLast(2).ToArray(), "td", 1, null),
        Quantized q when q.V.Type.Shape.Count >= 2 => new LayoutView(q.V, q.V.Type.Shape.SkipLast(2).ToArray(), "td", 1, q.OnnxType),
        _ => null,
    };

    /// <summary>A layout view as the lowerings take it: "td" is the stored activation itself (reshaped when ONNX's leading
    /// dimensions differ from the stored ones; rows are kept, so no data moves).</summary>
    Abs Plain(OnnxNode node, LayoutView lv)
    {
        if (lv.Axes != "td") return lv;
        int[] shape = lv.Shape;
        var v = shape.SequenceEqual(lv.V.Type.Shape) ? lv.V : Emit(new Reshape(Legal(node.Name), lv.V, NewValue(node.Outputs[0], lv.V.Type with { Shape = shape }), shape));
        return lv.OnnxType is { } t ? new Quantized(v, t) : new RealView(v);
    }

    /// <summary>An input that is a one-head split ([.., T, 1, D] from a Reshape) for an op other than the attention layouts: the
    /// activation itself, reshaped to that shape (rows kept, no data moves). Anything else unchanged.</summary>
    Abs? UnitHeadAsPlain(OnnxNode node, Abs? a) =>
        a is LayoutView { Axes: "thd", Heads: 1 } lv ? Plain(node, new LayoutView(lv.V, lv.Shape.SkipLast(2).ToArray(), "td", 1, lv.OnnxType)) : a;

    /// <summary>Transpose of an activation: a permutation of the last axes of its layout view that gives another layout
    /// ("td" ↔ "dt", "thd" → "htd" or "hdt", "htd" ↔ "hdt", "htd" → "thd").</summary>
    Abs? LowerActTranspose(OnnxNode node, Abs?[] ins)
    {
        if (AsLayout(ins[0]) is not { } lv) return null;
        int rank = lv.Shape.Length, lead = lv.Torch ? 0 : lv.Batch.Length;
        var perm = PermOf(node, rank);
        string Unsupported(string why) => $"Transpose of an activation of shape {ShapeUtil.Format(lv.Shape)} with perm [{string.Join(", ", perm)}]: {why}; " +
            "supported are the transposes of attention: an activation's last two axes (K for Q·Kᵀ), and the head split [.., T, H, dh] → [.., H, T, dh] " +
            "or [.., H, dh, T] and back";
        if (perm.Take(lead).Where((p, i) => p != i).Any())
            throw Error(node, Unsupported("it moves a leading (batch) axis" + (rank == 3 && !lv.Torch ? " (torch's nn.MultiheadAttention with batch_first=False " +
                "splits heads across a batch over 1 like this: HwGen takes its sequence-first layout at batch 1 only; export with batch_first=True)" : "")));
        var axes = new string(perm.Skip(lead).Select(p => lv.Axes[p - lead]).ToArray());
        if (axes is not ("td" or "dt" or "thd" or "htd" or "hdt")) throw Error(node, Unsupported($"it gives the layout {axes}"));
        return Plain(node, lv with { Axes = axes });
    }

    /// <summary>Reshape of an activation that splits its features into heads ([.., T, D] → [.., T, H, D/H]) or merges them back;
    /// null when the reshape keeps the stored layout (the ordinary lowering then takes it).</summary>
    Abs? LowerActReshape(OnnxNode node, Abs?[] ins, int[] target)
    {
        if (AsLayout(ins[0]) is not { } lv) return null;
        int rows = ShapeUtil.Rows(lv.V.Type.Shape), d = lv.V.Type.Shape[^1];
        // A split into heads; one head ([.., T, D] → [.., T, 1, D], as torch writes it for nhead = 1) when the reshape adds just that axis.
        bool split = target.Length >= 3 && (long)target[^2] * target[^1] == d && ShapeUtil.Size(target.SkipLast(2).ToArray()) == rows
            && (target[^1] < d || target.Length == lv.Shape.Length + 1 && target.SkipLast(2).SequenceEqual(lv.Shape.SkipLast(1)));
        if (lv.Axes == "td" && !split) return null;
        if (lv.Torch) return MergeTorchHeads(node, lv, target);
        if (lv.Axes is "td" or "thd" && split)
            return new LayoutView(lv.V, target.SkipLast(3).ToArray(), "thd", target[^2], lv.OnnxType);
        if (lv.Axes == "thd" && target.Length >= 2 && target[^1] == d && ShapeUtil.Rows(target) == rows)
            return Plain(node, new LayoutView(lv.V, target.SkipLast(2).ToArray(), "td", 1, lv.OnnxType));
        throw Error(node, $"Reshape of an activation {(lv.Axes == "td" ? "" : $"split into {lv.Heads} heads ")}of shape {ShapeUtil.Format(lv.Shape)} to " +
            $"{ShapeUtil.Format(target)}: only reshapes that keep the features, split them into heads ([.., T, D] → [.., T, H, D/H]) or merge the heads back are supported");
    }

    /// <summary>
    /// MatMul of two dequantized activations: A·Bᵀ when B is a transposed view ("dt", or Kᵀ's heads "hdt" with A's heads "htd":
    /// Q·Kᵀ), else A·B (P·V; with heads, A is [.., H, M, K] and B's heads "htd"). Batch dimensions must match exactly.
    /// </summary>
    Abs? LowerActMatMul(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not (RealView or LayoutView { OnnxType: null }) || ins[1] is not (RealView or LayoutView { OnnxType: null })) return null;
        if (node.OpType != "MatMul") throw Error(node, "Gemm of two activations is not supported (write it as MatMul)");
        if (AsLayout(ins[0]) is not { } a || AsLayout(ins[1]) is not { } b)
            throw Error(node, $"MatMul of two activations with a 1-D one ({ShapeUtil.Format(((RealView)(AsLayout(ins[0]) is null ? ins[0] : ins[1])!).V.Type.Shape)}) " +
                "is not supported: each operand needs rows and features");
        int[] sa = a.Shape, sb = b.Shape;
        string shapes = $"A is {ShapeUtil.Format(sa)}, B is {ShapeUtil.Format(sb)}";
        if (sa[^1] != sb[^2]) throw Error(node, $"shape mismatch: {shapes}");
        if (!sa.SkipLast(2).SequenceEqual(sb.SkipLast(2)))
            throw Error(node, sa.Length == sb.Length && sa.SkipLast(2).Zip(sb.SkipLast(2)).Any(p => p.First != p.Second && p.First != 1 && p.Second != 1)
                ? $"shape mismatch: {shapes} (their leading dimensions differ)"
                : $"MatMul of two activations with broadcast batch dimensions ({shapes}) is not supported: their leading dimensions must be equal");
        int[] shape = [.. sa.SkipLast(1), sb[^1]];
        switch (a.Axes, b.Axes)
        {
            case ("td", "dt"):
                return new PendingActMatMul(a.V, b.V, true, double.NegativeInfinity, double.PositiveInfinity, node.Name, Shape: shape);
            case ("htd", "hdt") when a.Torch != b.Torch:
                throw Error(node, $"MatMul of two activations of which only one is split into heads the way torch's nn.MultiheadAttention does ({shapes}): " +
                    "an attention pattern recognized only in part");
            case ("htd", "hdt"):
                // The product indexes A's sequences by its stored leading dimensions: give it the view's (rows kept, no data moves).
                int[] rows = [.. a.Batch, a.Tokens, a.V.Type.Shape[^1]];
                var av = rows.SequenceEqual(a.V.Type.Shape) ? a.V
                    : Emit(new Reshape(Legal(node.Name + "_sequences"), a.V, NewValue(node.Name + "_sequences", a.V.Type with { Shape = rows }), rows));
                return new PendingActMatMul(av, b.V, true, double.NegativeInfinity, double.PositiveInfinity, node.Name, Heads: a.Heads, Shape: shape);
            case ("td", "td"):
                return new PendingActMatMul(a.V, b.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name, Shape: shape);
            case ("td", "htd") when b.Torch && sa.Length == 3 && sa[0] == ShapeUtil.Size(b.Batch) * b.Heads:
                // P [B·H, T, T] as the product takes it, [B, H, T, T] (rows kept, no data moves).
                int[] heads = [.. b.Batch, b.Heads, sa[1], sa[2]];
                var pv = Emit(new Reshape(Legal(node.Name + "_heads"), a.V, NewValue(node.Name + "_heads", a.V.Type with { Shape = heads }), heads));
                return new PendingActMatMul(pv, b.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name, Heads: b.Heads, Merged: true, Torch: true);
            case ("td", "htd") when sa.Length >= 3 && sa[^3] == b.Heads:
                return new PendingActMatMul(a.V, b.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name, Heads: b.Heads, Merged: true);
            default:
                throw Error(node, $"MatMul of two activations in layouts {Describe(a)} and {Describe(b)} ({shapes}): an attention pattern recognized only in part; " +
                    "supported are Q·Kᵀ (B transposed, per head when both are split into heads) and P·V (B's heads split like V's)");
        }
    }

    /// <summary>The nodes that take attention layout views: Reshape, Flatten, Transpose, a product of two activations, Identity and the
    /// QDQ pair.</summary>
    static bool TakesViews(OnnxNode node, Abs?[] ins) =>
        node.OpType is "Reshape" or "Flatten" or "Transpose" or "Identity" || IsQuantizer(node)
        || node.OpType is "MatMul" or "Gemm" && ins.Take(2).All(x => x is RealView or LayoutView);

    /// <summary>The one step before the lowerings for attention layout views (a head split or transpose HwGen moves no data for) and
    /// masked scores: a node that takes no views gets a one-head split as the activation itself (<see cref="UnitHeadAsPlain"/>), and
    /// any other view or masked scores reaching a node that does not take them is an error (masked scores go to a Softmax and the
    /// QDQ pair only).</summary>
    Abs?[] AdmitViews(OnnxNode node, Abs?[] ins)
    {
        string op = node.OpType;
        bool takesViews = TakesViews(node, ins);
        if (!takesViews) ins = ins.Select(a => UnitHeadAsPlain(node, a)).ToArray();
        for (int i = 0; i < ins.Length; i++)
        {
            if (ins[i] is LayoutView lv && !takesViews)
                throw Error(node, $"{op} input {i} '{node.Inputs[i]}' is an activation in a changed layout ({Describe(lv)}, {ShapeUtil.Format(lv.Shape)}): HwGen " +
                    "moves no data for attention's Reshape and Transpose, so only a MatMul of two activations (Q·Kᵀ, P·V), a Reshape or Transpose " +
                    "(merging the heads back) or a quantizer (a QuantizeLinear/DequantizeLinear pair, QONNX's Quant) may take it");
            if (ins[i] is MaskedScores ms && op is not ("Softmax" or "QuantizeLinear" or "DequantizeLinear" or "Identity"))
                throw Error(node, $"{op} input {i} '{node.Inputs[i]}' is the scores masked by the Add '{ms.Node}' (a constant of 0 and values at most -10^4 " +
                    "is an attention mask): only a Softmax may take masked scores, directly or through a QuantizeLinear/DequantizeLinear pair");
        }
        return ins;
    }

    static string Describe(LayoutView v) => v.Axes switch
    {
        "td" => "rows × features", "dt" => "transposed", "thd" => "features split into heads (not yet transposed)", "htd" => "heads × rows × features",
        _ => "heads × features × rows (transposed)",
    };

    /// <summary>ReduceMean over the token axis (mean pooling) of a dequantized activation [.., T, D]: a product with a row of ones,
    /// times 1/T, on the activation matmul engine. Null for any other axis.</summary>
    Abs? LowerMeanPool(OnnxNode node, RealView x, IReadOnlyList<long> axes)
    {
        var shape = x.V.Type.Shape;
        int rank = shape.Count;
        if (rank < 2 || axes is not [var ax] || (ax != -2 && ax != rank - 2)) return null;
        int tokens = shape[^2], sequences = ShapeUtil.Rows(shape) / tokens;
        var ones = NewValue($"{node.Name}_ones", new TensorType(DType.Int8, [.. shape.SkipLast(2), 1, tokens], QuantParams.PerTensor(1, 0)));
        Emit(new QConstant(Legal($"{node.Name}_ones"), ones, Enumerable.Repeat(1, sequences * tokens).ToArray()));
        return new PendingActMatMul(ones, x.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name, 1.0 / tokens,
            Shape: node.Int("keepdims", 1) == 0 ? [.. shape.SkipLast(2), shape[^1]] : null);
    }

    /// <summary>The pending product quantized to q: a QMatMul with multiplier sa·sb·factor/sy, reshaped to its ONNX shape when that
    /// differs in unit axes (rows kept, no data moves).</summary>
    Value EmitActMatMul(OnnxNode node, PendingActMatMul p, QuantParams q, (int Lo, int Hi) range)
    {
        var (lo, hi) = QuantizedBounds(p.Lo, p.Hi, q, range);
        var y = NewValue(node.Outputs[0], new TensorType(DType.Int8, [], q));
        var mm = new QMatMul(Legal(p.Node), p.A, p.B, y)
        {
            TransposeB = p.TransposeB, Heads = p.Heads, OutputQuant = q, RealMultiplier = p.A.Type.Quant!.Scale * p.B.Type.Quant!.Scale * p.Factor / q.Scale,
            ClampMin = lo, ClampMax = hi,
        };
        y.Type = mm.InferType();
        Emit(mm);
        if (p.Shape is not { } onnx || onnx.SequenceEqual(y.Type.Shape)) return y;
        if (ShapeUtil.Rows(onnx) != ShapeUtil.Rows(y.Type.Shape) || onnx[^1] != y.Type.Shape[^1])
            throw new InvalidOperationException($"'{p.Node}': the product's ONNX shape {ShapeUtil.Format(onnx)} is not its stored shape {ShapeUtil.Format(y.Type.Shape)} up to unit axes");
        return Emit(new Reshape(Legal(p.Node + "_shape"), y, NewValue(node.Outputs[0], y.Type with { Shape = onnx }), onnx));
    }

    /// <summary>QuantizeLinear (<paramref name="onnxType"/>: the quantized view it gives) or a QONNX quantizer (null: a real view
    /// again, codes in <paramref name="range"/>) of an attention layout: a layout view keeps its parameters (ONNX Runtime's QDQ
    /// pair around a Reshape or Transpose); P·V with heads is stored merged and seen split. Null for everything else.</summary>
    Abs? QuantizeLayout(OnnxNode node, Abs? x, QuantParams q, DType? onnxType, (int Lo, int Hi) range)
    {
        switch (x)
        {
            case LayoutView { OnnxType: null } lv:
                return lv.V.Type.Quant!.SameAs(q) && range == FullRange ? lv with { OnnxType = onnxType }
                    : throw Error(node, $"{node.OpType} of an activation in a changed layout ({Describe(lv)}) to " +
                        (range == FullRange ? "other parameters than its own" : $"the codes [{range.Lo}, {range.Hi}]") + " is not supported " +
                        "(keep the Reshape's or Transpose's quantizer at the input's scale and zero point, 8 bits)");
            case PendingActMatMul { Merged: true } pm:
                var y = EmitActMatMul(node, pm, q, range);
                return new LayoutView(y, pm.A.Type.Shape.SkipLast(3).ToArray(), "htd", pm.Heads, onnxType, pm.Torch);  // A is [.., H, M, K]
            default:
                return null;
        }
    }

    /// <summary>DequantizeLinear of a quantized layout view: its real view, with the same parameters.</summary>
    Abs DequantizeLayout(OnnxNode node, LayoutView lv, Abs?[] ins) =>
        lv.V.Type.Quant!.SameAs(ActivationQuant(node, ins).Quant) ? lv with { OnnxType = null }
            : throw Error(node, "DequantizeLinear parameters differ from those the tensor was quantized with");
}

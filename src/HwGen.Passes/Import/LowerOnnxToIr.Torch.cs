using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// torch's nn.MultiheadAttention as torch.onnx.export writes it (nn.TransformerEncoderLayer, batch_first True or False). With
/// batch_first, the block transposes [B, T, D] to the sequence-first [T, B, D], projects q, k and v with one packed in_proj
/// MatMul whose result it cuts by Slice (or Split) of the features, splits the heads as [T, B·H, dh], transposes them to
/// [B·H, T, dh] (K to [B·H, dh, T]), divides q by √dh, and merges back through [T·B, D] and [T, B, D]. No data moves for any
/// of it: a sequence-first activation is a <see cref="Framed"/> value (stored batch-first, rows (b, t)) that row-wise ops
/// pass through, the heads are torch-mode <see cref="LayoutView"/>s, and a Slice of the in_proj features becomes a product
/// with the sliced weight columns (bit-identical per column; the packed product is dropped when nothing else reads it).
/// </summary>
public sealed partial class LowerOnnxToIr
{
    /// <summary>How a framed value's ONNX tensor relates to the value it wraps.</summary>
    abstract record Frame;
    /// <summary>Sequence-first: ONNX sees [T, B, F] (or, <paramref name="Flat"/>, [T·B, F]) where the wrapped value is [B, T, F]
    /// (or [B·T, F]): the same rows in the order (t, b).</summary>
    sealed record SeqFrame(int Tokens, int Batch, bool Flat) : Frame;
    /// <summary>An element-wise op (a Mul or Div by a scalar) of an attention layout view: the result has the view's layout.</summary>
    sealed record ViewFrame(LayoutView Template) : Frame;

    /// <summary>A value (quantized, real or pending) that ONNX sees through <paramref name="F"/>.</summary>
    sealed record Framed(Abs Inner, Frame F) : Abs;

    /// <summary>The ops a sequence-first activation passes through row by row: each output row is a function of the same input
    /// row (its features) and of constants broadcast over the rows.</summary>
    static readonly HashSet<string> RowWise =
    [
        "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Relu", "Clip", "Erf", "Sigmoid", "Tanh", "Softmax", "LayerNormalization",
        "ReduceMean", "QuantizeLinear", "DequantizeLinear", "Identity", "Slice", "Cast",
    ];

    /// <summary>
    /// The nodes that make, take or undo a <see cref="Framed"/> value; null when the node has none and makes none. A Transpose
    /// [1, 0, 2] of a 3-D activation makes a sequence-first one (and undoes it); Reshapes go between [T, B, F], [T·B, F] and
    /// the heads [T, B·H, dh]; a Mul or Div of an attention view by a scalar frames its result with the view's layout.
    /// </summary>
    Abs? LowerFramed(OnnxNode node, Abs?[] ins)
    {
        string op = node.OpType;
        if (op == "Transpose" && ins[0] is Framed { F: SeqFrame { Flat: false } } back && PermOf(node, 3) is [1, 0, 2])
            return back.Inner;
        if (op == "Transpose" && ins[0] is RealView or Quantized && Shape3(ins[0]!) is [var b, var t, _] && PermOf(node, 3) is [1, 0, 2])
            return new Framed(ins[0]!, new SeqFrame(t, b, false));
        if (op is "Mul" or "Div" && ins[0] is LayoutView { OnnxType: null } lv && ins.Length == 2 && ins[1] is Const)
            return new Framed(LowerOp(node, [new RealView(lv.V), ins[1]]), new ViewFrame(lv));
        if (!ins.Any(a => a is Framed)) return null;

        if (ins.FirstOrDefault(a => a is Framed { F: ViewFrame }) is Framed { F: ViewFrame vf } viewed)
        {
            if (!IsQuantizer(node) && op != "Identity")
                throw Error(node, $"{op} of the scaled attention view '{node.Inputs[Array.IndexOf(ins, viewed)]}' ({Describe(vf.Template)}): only its " +
                    "quantizer (a QuantizeLinear/DequantizeLinear pair, QONNX's Quant) may take it before the MatMul of two activations");
            return Reframe(LowerOp(node, ins.Select(a => a == viewed ? viewed.Inner : a).ToArray()), vf);
        }
        var frames = ins.OfType<Framed>().Select(f => (SeqFrame)f.F).Distinct().ToList();
        var sf = frames[0];
        if (frames.Count > 1)
            throw Error(node, $"{op} of sequence-first activations of different shapes ({string.Join(", ", frames.Select(f => ShapeUtil.Format(SeqShape(f, 0)[..^1])))})");
        var x = (Framed)ins.First(a => a is Framed)!;
        if (op == "Reshape") return ReshapeSequenceFirst(node, ins, x, sf);
        if (!(RowWise.Contains(op) || IsQuantizer(node)) || ins.Any(a => a is not (null or Framed or Const or QConst)))
            throw Error(node, $"{op} of the sequence-first activation '{node.Inputs[Array.IndexOf(ins, x)]}' ({SeqDescription(sf)}): HwGen stores it " +
                "batch-first and moves no data for torch's Transpose, so only row-wise ops (a MatMul or Gemm with constant weights, a bias, " +
                "LayerNorm, Softmax over the features, a quantizer), a Slice of its features, the head split " +
                "[T, B·H, dh] and the Transpose back may take it");
        var inner = ins.Select(a => a is Framed f ? f.Inner : a).ToArray();
        for (int i = 0; i < ins.Length; i++)
            if (((ins[i] as Const)?.T ?? (ins[i] as QConst)?.Real) is { } c
                && !(op is "Slice" or "Clip" && i > 0 || IsQuantizer(node) && i > 0 || op is "Gemm" or "MatMul" && i == 1)
                && c.Shape.SkipLast(1).Any(d => d != 1))
                throw Error(node, $"{op} of a sequence-first activation and a constant of shape {ShapeUtil.Format(c.Shape)}: the constant must be the same " +
                    "for every row (size 1 on every axis but the last)");
        if (op is "Softmax" or "LayerNormalization" or "ReduceMean" && !LastAxisOnly(node, sf))
            throw Error(node, $"{op} of a sequence-first activation over other axes than the last (the features) is not supported");
        return new Framed(op == "Slice" ? LowerSlice(node, inner, SeqShape(sf, FeaturesOf(x.Inner)), tokens: false) : LowerOp(node, inner), sf);
    }

    /// <summary>QuantizeLinear, DequantizeLinear or a QONNX quantizer: a row-wise op whose other inputs are its parameters.</summary>
    static bool IsQuantizer(OnnxNode node) => node.OpType is "QuantizeLinear" or "DequantizeLinear" || QonnxQuant.Is(node);

    static int[]? Shape3(Abs a) => a switch
    {
        RealView { V.Type.Shape: { Count: 3 } s } => [.. s],
        Quantized { V.Type.Shape: { Count: 3 } s } => [.. s],
        _ => null,
    };

    static int FeaturesOf(Abs a) => a switch { RealView rv => rv.V.Type.Shape[^1], Quantized q => q.V.Type.Shape[^1], _ => 0 };

    /// <summary>The ONNX shape of a sequence-first value with <paramref name="features"/> features.</summary>
    static int[] SeqShape(SeqFrame f, int features) => f.Flat ? [f.Tokens * f.Batch, features] : [f.Tokens, f.Batch, features];

    static string SeqDescription(SeqFrame f) => $"torch's sequence-first layout {(f.Flat ? "[T·B, F]" : "[T, B, F]")} with T = {f.Tokens}, B = {f.Batch}";

    bool LastAxisOnly(OnnxNode node, SeqFrame f)
    {
        int rank = f.Flat ? 2 : 3;
        var axes = node.OpType == "ReduceMean" ? node.Ints("axes") ?? [] : [node.Int("axis", -1)];
        return axes.Count == 1 && (axes[0] == -1 || axes[0] == rank - 1);
    }

    /// <summary>A result of an op on a framed view's inner value, framed again: a quantized or real result is the view itself.</summary>
    static Abs Reframe(Abs result, ViewFrame f) => result switch
    {
        Quantized q => f.Template with { V = q.V, OnnxType = q.OnnxType },
        RealView r => f.Template with { V = r.V, OnnxType = null },
        _ => new Framed(result, f),
    };

    /// <summary>Reshape of a sequence-first activation: [T, B, F] ↔ [T·B, F] (the wrapped value reshaped between [B, T, F] and
    /// [B·T, F], rows kept) or the head split [T, B, D] → [T, B·H, dh].</summary>
    Abs ReshapeSequenceFirst(OnnxNode node, Abs?[] ins, Framed x, SeqFrame f)
    {
        if (x.Inner is not (RealView or Quantized)) throw Error(node, "Reshape input must be a quantized tensor or its dequantized view");
        int d = FeaturesOf(x.Inner), t = f.Tokens, b = f.Batch;
        int[] target;
        try { target = OnnxEvaluator.ReshapeTarget(SeqShape(f, d), ConstIn(node, ins, 1, "shape").T.Data.Select(v => (long)v).ToArray(), node.Int("allowzero", 0) != 0); }
        catch (ArgumentException e) { throw Error(node, $"shape mismatch: {e.Message}"); }
        if (target.SequenceEqual(SeqShape(f with { Flat = !f.Flat }, d)))
            return new Framed(ReshapeInner(node, x.Inner, f.Flat ? [b, t, d] : [b * t, d]), f with { Flat = !f.Flat });
        if (!f.Flat && target.Length == 3 && target[0] == t && target[1] % b == 0 && target[1] / b * target[2] == d && target[1] > b)
        {
            var lv = AsLayout(ReshapeInner(node, x.Inner, [b, t, d]))!;
            return new LayoutView(lv.V, [b], "thd", target[1] / b, lv.OnnxType, Torch: true);
        }
        throw Error(node, $"Reshape of a sequence-first activation ({SeqDescription(f)}, {ShapeUtil.Format(SeqShape(f, d))}) to {ShapeUtil.Format(target)}: " +
            "supported are [T, B, F] ↔ [T·B, F] and the head split [T, B·H, F/H] of torch's nn.MultiheadAttention");
    }

    /// <summary>The real or quantized value reshaped (rows kept, no data moves), or itself when it has that shape.</summary>
    Abs ReshapeInner(OnnxNode node, Abs x, int[] shape)
    {
        var (v, t) = x switch { RealView rv => (rv.V, (DType?)null), Quantized q => (q.V, q.OnnxType), _ => throw new InvalidOperationException("not a value") };
        if (!v.Type.Shape.SequenceEqual(shape)) v = Emit(new Reshape(Legal(node.Name), v, NewValue(node.Outputs[0], v.Type with { Shape = shape }), shape));
        return t is { } type ? new Quantized(v, type) : new RealView(v);
    }

    /// <summary>The merge of torch's heads: [T, B·H, dh] (from the Transpose after P·V) to [T·B, D] or [T, B, D], sequence-first.</summary>
    Abs MergeTorchHeads(OnnxNode node, LayoutView lv, int[] target)
    {
        int t = lv.Tokens, b = ShapeUtil.Size(lv.Batch), d = lv.V.Type.Shape[^1];
        var plain = lv.OnnxType is { } type ? (Abs)new Quantized(lv.V, type) : new RealView(lv.V);
        if (lv.Axes == "thd" && target.SequenceEqual([t * b, d])) return new Framed(ReshapeInner(node, plain, [b * t, d]), new SeqFrame(t, b, true));
        if (lv.Axes == "thd" && target.SequenceEqual([t, b, d])) return new Framed(ReshapeInner(node, plain, [b, t, d]), new SeqFrame(t, b, false));
        throw Error(node, $"Reshape of torch's attention heads ({Describe(lv)}, {ShapeUtil.Format(lv.Shape)}) to {ShapeUtil.Format(target)}: only the merge " +
            $"of [T, B·H, dh] to [T·B, D] or [T, B, D] (after the Transpose [1, 0, 2] of P·V) is supported");
    }

    /// <summary>The ONNX shape of an activation (Shape's input): static, since every input's shape is.</summary>
    int[] OnnxShape(OnnxNode node, Abs a) => a switch
    {
        FloatInput f => [.. f.V.Type.Shape],
        RealView rv => [.. rv.V.Type.Shape],
        Quantized q => [.. q.V.Type.Shape],
        LayoutView lv => lv.Axes == "td" && !lv.Torch ? [.. lv.V.Type.Shape] : lv.Shape,
        Framed { F: SeqFrame sf } fr => fr.Inner switch
        {
            PendingMatMul pm => SeqShape(sf, pm.N),
            var inner => SeqShape(sf, OnnxShape(node, inner)[^1]),
        },
        Framed { F: ViewFrame vf } => vf.Template.Shape,
        PendingMatMul pm => [.. pm.X.Type.Shape.SkipLast(1), pm.N],
        PendingAdd pa => pa.Shape,
        PendingActMatMul { Shape: { } s } => s,
        PendingLayerNorm ln => [.. ln.V.Type.Shape],
        _ => throw Error(node, $"Shape of '{node.Inputs[0]}': its shape is not known at this point of the import (take the shape of a quantized " +
            "or dequantized tensor, or of a MatMul, Add or LayerNorm result)"),
    };

    /// <summary>The packed products a Slice or Split of the features cut into parts, and the parts; each dropped at the end when
    /// nothing reads it (the packed one once all its parts are cut; a part no node takes, such as an unused Split output).</summary>
    readonly List<QGemm> splitProducers = [];

    /// <summary>Slice of a dequantized activation: of its last axis (the features of a MatMul with constant weights: torch's
    /// packed in_proj), or of its token axis (a class token: <see cref="LowerTokenSlice"/>).</summary>
    Abs LowerSlice(OnnxNode node, Abs?[] ins) => LowerSlice(node, ins, ins[0] is RealView or Quantized ? OnnxShape(node, ins[0]!) : null, tokens: true);

    /// <summary>Slice of an activation of ONNX shape <paramref name="onnxShape"/>; of its tokens only when <paramref name="tokens"/> (the
    /// second last axis is the tokens).</summary>
    Abs LowerSlice(OnnxNode node, Abs?[] ins, int[]? onnxShape, bool tokens)
    {
        if (onnxShape is null || ins[0] is not (RealView or Quantized))
            throw Error(node, "Slice is supported on a quantized activation or its dequantized view (the features of a packed projection, or tokens)");
        long[]? Ints(int i, string what) => ins.ElementAtOrDefault(i) is null ? null : ConstIn(node, ins, i, what).T.Data.Select(v => (long)v).ToArray();
        (int Start, int Step, int Count)[] r;
        try
        {
            r = model.OpsetOf(node) < 10
                ? OnnxEvaluator.SliceRanges(onnxShape, node.Ints("starts") ?? [], node.Ints("ends") ?? [], node.Ints("axes"), null)
                : OnnxEvaluator.SliceRanges(onnxShape, Ints(1, "starts")!, Ints(2, "ends")!, Ints(3, "axes"), Ints(4, "steps"));
        }
        catch (ArgumentException e) { throw Error(node, e.Message); }
        var cut = Enumerable.Range(0, r.Length).Where(a => r[a] != (0, 1, onnxShape[a])).ToArray();
        if (cut.Length == 1 && cut[0] == r.Length - 1 && r[^1].Step == 1)
            return SliceFeatures(node, ins[0]!, r[^1].Start, r[^1].Count, node.Outputs[0]);
        if (tokens && cut.Length == 1 && cut[0] == r.Length - 2 && r.Length >= 3 && ins[0] is RealView rv)
            return LowerTokenSlice(node, rv, Enumerable.Range(0, r[^2].Count).Select(i => r[^2].Start + i * r[^2].Step).ToArray(), null);
        throw Error(node, $"Slice of an activation of shape {ShapeUtil.Format(onnxShape)} to {ShapeUtil.Format(r.Select(x => x.Count).ToArray())}: supported are " +
            "a contiguous range of the features (the last axis) and the tokens (the second last) of a 3-D or higher activation");
    }

    /// <summary>Split of an activation's features into parts (torch's packed in_proj as MatMul + Split): each part as a Slice.</summary>
    void LowerSplit(OnnxNode node, Abs?[] ins)
    {
        var x = ins[0] is Framed fr ? fr.Inner : ins[0];
        if (x is not (RealView or Quantized)) throw Error(node, "Split is supported on a quantized activation or its dequantized view (the features of a packed projection)");
        var shape = OnnxShape(node, ins[0]!);
        int axis = (int)node.Int("axis", 0), n = node.Outputs.Count;
        if (axis != -1 && axis != shape.Length - 1) throw Error(node, $"Split of an activation along axis {axis}: only the features (the last axis) can be split");
        int d = shape[^1];
        long[] sizes = model.OpsetOf(node) < 13 ? node.Ints("split")?.ToArray() ?? []
            : ins.ElementAtOrDefault(1) is { } s ? ConstIn(node, ins, 1, "split").T.Data.Select(v => (long)v).ToArray() : [];
        if (sizes.Length == 0) sizes = Enumerable.Range(0, n).Select(i => (long)Math.Min((d + n - 1) / n, Math.Max(0, d - i * ((d + n - 1) / n)))).ToArray();
        if (sizes.Length != n || sizes.Any(v => v <= 0) || sizes.Sum() != d)
            throw Error(node, $"split [{string.Join(", ", sizes)}] does not cut {d} features into {n} non-empty parts");
        int start = 0;
        for (int i = 0; i < n; i++)
        {
            var part = SliceFeatures(node, x, start, (int)sizes[i], node.Outputs[i]);
            env[node.Outputs[i]] = ins[0] is Framed f ? new Framed(part, f.F) : part;
            start += (int)sizes[i];
        }
    }

    /// <summary>Features [start, start + count) of the output of a QGemm: the same product with those weight columns only.</summary>
    Abs SliceFeatures(OnnxNode node, Abs x, int start, int count, string output)
    {
        var (v, type) = x switch { RealView rv => (rv.V, (DType?)null), Quantized q => (q.V, q.OnnxType), _ => throw new InvalidOperationException("not a value") };
        if (graph.ProducerOf(v) is not QGemm g)
            throw Error(node, $"{node.OpType} of the features of '{node.Inputs[0]}', which is no product with constant weights ({(graph.ProducerOf(v) is { } p ? p.Mnemonic : "a graph input")}): " +
                "HwGen cuts features by computing only those columns of a MatMul or Gemm (torch's packed in_proj), and moves no data");
        if (start == 0 && count == g.N) return x;
        var y = NewValue(output, new TensorType(DType.Int8, [.. v.Type.Shape.SkipLast(1), count], g.OutputQuant));
        var w = new int[g.K * count];
        for (int k = 0; k < g.K; k++)
            for (int j = 0; j < count; j++) w[k * count + j] = g.Weights[k * g.N + start + j];
        splitProducers.Add((QGemm)graph.ProducerOf(Emit(new QGemm(Legal($"{g.Name}_{start}_{start + count}"), g.Input, y)
        {
            K = g.K, N = count, Weights = w, Bias = g.Bias.Skip(start).Take(count).ToArray(), RealMultiplier = g.RealMultiplier.Skip(start).Take(count).ToArray(),
            InputZeroPoint = g.InputZeroPoint, ClampMin = g.ClampMin, ClampMax = g.ClampMax, OutputQuant = g.OutputQuant, QonnxBits = g.QonnxBits,
        }))!);
        if (!splitProducers.Contains(g)) splitProducers.Add(g);
        return type is { } t ? new Quantized(y, t) : new RealView(y);
    }

    /// <summary>Removes the packed products that were cut into parts and that no op and no graph output reads.</summary>
    void DropSplitProducers()
    {
        foreach (var g in splitProducers)
            if (graph.UseCount(g.Output) == 0) graph.Ops.Remove(g);
    }
}

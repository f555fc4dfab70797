using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>A float matrix product of a quantized activation with quantized weights, awaiting its QuantizeLinear.</summary>
    sealed record PendingMatMul(Value X, int K, int N, IReadOnlyList<int> Weights, double[] WeightScale, double[]? BiasReal,
        double ClampLo, double ClampHi, string Node) : Abs
    {
        /// <summary>The QONNX bit width of the weights (0: not QONNX).</summary>
        public int QonnxBits { get; init; }
    }

    /// <summary>Weights W[k,n] with the zero point removed, and the per-column scale, from a DequantizeLinear'd constant.</summary>
    (int K, int N, IReadOnlyList<int> W, double[] Scale) Weights(OnnxNode node, QConst b, bool transposed, double alpha)
    {
        if (b.Q.Rank != 2) throw Error(node, $"weights must be 2-D, got {ShapeUtil.Format(b.Q.Shape)}");
        int k = transposed ? b.Q.Shape[1] : b.Q.Shape[0], n = transposed ? b.Q.Shape[0] : b.Q.Shape[1];
        int nAxis = transposed ? 0 : 1;
        if (b.Scale.Size != 1 && (b.Scale.Size != n || b.Axis != nAxis))
            throw Error(node, $"weight scales must be per tensor or per output channel (axis {nAxis}); got {b.Scale.Size} scales on axis {b.Axis}");
        if (b.Zp is { Size: not 1 } && b.Zp.Size != n)
            throw Error(node, $"weight zero points must be one or one per output channel ({n}); got {b.Zp.Size}");
        if (b.QonnxBits > 8) throw Error(node, $"weights of {b.QonnxBits} bits (a QONNX Quant) do not fit the 8-bit datapath (2 to 8 bits)");
        if (b.Q.Type is not (DType.Int8 or DType.UInt8)) throw Error(node, $"weights must be int8 or uint8, got {b.Q.Type.Name()}");
        var w = new sbyte[k * n];   // while read; the layer keeps them in two bits a weight when ternary, else one byte (WeightCodes)
        var scale = new double[n];
        for (int j = 0; j < n; j++)
        {
            scale[j] = (float)b.Scale.Data[b.Scale.Size == 1 ? 0 : j] * alpha;
            long zp = b.Zp is null ? 0 : (long)b.Zp.Data[b.Zp.Size == 1 ? 0 : j];
            for (int i = 0; i < k; i++)
            {
                long q = (long)b.Q.Data[transposed ? j * k + i : i * n + j] - zp;
                if (q is < -128 or > 127)
                    throw Error(node, $"weight minus its zero point ({q}) does not fit int8; the dense engine takes signed 8-bit weights");
                w[i * n + j] = (sbyte)q;
            }
        }
        return (k, n, WeightCodes.Of(w), scale);
    }

    /// <summary>Float weights quantized per output channel (along <paramref name="axis"/>) to symmetric int8: scale = absmax / 127, codes
    /// rounded half to even. An engine that requantizes them (BitMoD) starts from these codes times their scales: within half an
    /// int8 step (1/254 of the channel's largest weight) of the floats.</summary>
    QConst FloatWeights(OnnxNode node, Tensor w, int axis)
    {
        if (w.Data.Any(v => !double.IsFinite(v))) throw Error(node, "a float weight is not finite");
        int n = w.Shape[axis], other = w.Shape[1 - axis];
        long At(int j, int i) => axis == 1 ? (long)i * n + j : (long)j * other + i;
        var scale = new double[n];
        var codes = new double[w.Size];
        for (int j = 0; j < n; j++)
        {
            double max = 0;
            for (int i = 0; i < other; i++) max = Math.Max(max, Math.Abs(w.Data[At(j, i)]));
            scale[j] = max == 0 ? 1 : (float)(max / 127);
            for (int i = 0; i < other; i++) codes[At(j, i)] = Math.Clamp(Math.Round(w.Data[At(j, i)] / scale[j], MidpointRounding.ToEven), -127, 127);
        }
        return new QConst(new Tensor(DType.Int8, w.Shape, codes), new Tensor(DType.Float32, [n], scale), null, axis, () => w);
    }

    double[] BiasVector(OnnxNode node, Abs? c, int n, double beta)
    {
        var t = c switch
        {
            QConst q => q.Real,
            Const f when !f.T.Type.IsInteger() => f.T,
            _ => throw Error(node, "bias must be a constant (float, or DequantizeLinear of an int32 constant)"),
        };
        if (t.Size != 1 && (t.Size != n || t.Shape[^1] != n))
            throw Error(node, $"bias of shape {ShapeUtil.Format(t.Shape)} must be a scalar or a vector of {n}");
        return Enumerable.Range(0, n).Select(j => t.Data[t.Size == 1 ? 0 : j] * beta).ToArray();
    }

    Abs LowerMatMul(OnnxNode node, Abs?[] ins)
    {
        if (LowerActMatMul(node, ins) is { } act) return act;
        if (ins[0] is not RealView a) throw Error(node, $"{node.OpType} input A must be a dequantized activation (DequantizeLinear of a quantized tensor)");
        bool gemm = node.OpType == "Gemm";
        var b = ins[1] switch
        {
            QConst q => q,
            Const f when !f.T.Type.IsInteger() && f.T.Rank == 2 => FloatWeights(node, f.T, gemm && node.Int("transB", 0) != 0 ? 0 : 1),
            _ => throw Error(node, $"{node.OpType} input B must be constant weights (DequantizeLinear of an int8 initializer, or a 2-D float initializer)"),
        };
        if (gemm && node.Int("transA", 0) != 0) throw Error(node, "Gemm with transA=1 is not supported");
        if (gemm && a.V.Type.Shape.Count != 2) throw Error(node, $"Gemm input A must be 2-D, got {ShapeUtil.Format(a.V.Type.Shape)}");
        if (gemm && (!(node.Float("alpha", 1) > 0) || !float.IsFinite(node.Float("alpha", 1)) || !float.IsFinite(node.Float("beta", 1))))
            throw Error(node, $"Gemm alpha must be positive and finite and beta finite (HwGen folds them into the scales), got alpha {node.Float("alpha", 1)}, beta {node.Float("beta", 1)}");
        var (k, n, w, scale) = Weights(node, b, gemm && node.Int("transB", 0) != 0, gemm ? node.Float("alpha", 1) : 1);
        if (a.V.Type.Shape.Count == 0 || a.V.Type.Shape[^1] != k)
            throw Error(node, $"shape mismatch: A is {ShapeUtil.Format(a.V.Type.Shape)} but B needs {k} input features");
        var bias = gemm && ins.ElementAtOrDefault(2) is { } c ? BiasVector(node, c, n, node.Float("beta", 1)) : null;
        return new PendingMatMul(a.V, k, n, w, scale, bias, double.NegativeInfinity, double.PositiveInfinity, node.Name) { QonnxBits = b.QonnxBits };
    }

    Abs LowerActivation(OnnxNode node, Abs?[] ins)
    {
        double lo = 0, hi = double.PositiveInfinity;
        if (node.OpType == "Clip")
        {
            lo = ins.ElementAtOrDefault(1) is Const mn ? mn.T.Data[0] : node.Float("min", float.NegativeInfinity);
            hi = ins.ElementAtOrDefault(2) is Const mx ? mx.T.Data[0] : node.Float("max", float.PositiveInfinity);
            if (ins.Skip(1).Any(a => a is not null and not Const)) throw Error(node, "Clip bounds must be constants");
        }
        return ins[0] switch
        {
            Quantized q => ClampCodes(node, q, ins),
            PendingMatMul pm => pm with { ClampLo = Math.Max(pm.ClampLo, lo), ClampHi = Math.Min(pm.ClampHi, hi) },
            RealView rv => new PendingClamp(rv.V, lo, hi, node.Name),
            PendingClamp pc => pc with { Lo = Math.Max(pc.Lo, lo), Hi = Math.Min(pc.Hi, hi) },
            PendingAdd pa => pa with { Lo = Math.Max(pa.Lo, lo), Hi = Math.Min(pa.Hi, hi) },
            RealFunction f => throw Error(node, $"{node.OpType} after an element-wise function of one dequantized tensor ({f.Chain}, such as x + x " +
                "or a scaling) is not supported: quantize before it"),
            PendingActMatMul pm => pm with { Lo = Math.Max(pm.Lo, lo), Hi = Math.Min(pm.Hi, hi) },
            _ => throw Error(node, $"{node.OpType} is supported after a quantized matrix product or Add, or on a dequantized tensor"),
        };
    }

    /// <summary>
    /// A Reshape or Flatten that moves data between rows, of a graph input quantized on the host and read by nothing else (an image
    /// MLP's Flatten of [B, 1, H, W], as torch and ONNX Runtime's quantizer write it: QuantizeLinear, DequantizeLinear, Flatten): the
    /// host quantizes the input already reshaped, the same elements in the same order, so the graph input takes the new shape (any
    /// input of the old shape's size is accepted, as for every input). Null when the input is no such value.
    /// </summary>
    Value? ReshapeOnHost(OnnxNode node, Value v, int[] target)
    {
        if (graph.Ops.OfType<Quantize>().SingleOrDefault(q => q.Output == v) is not { } quantize) return null;
        int i = graph.Inputs.IndexOf(quantize.Input);
        if (i < 0) return null;
        // Each ONNX value from the graph input to this node has one reader: the graph input, its QuantizeLinear, a DequantizeLinear.
        for (var name = node.Inputs[0]; ; )
        {
            if (model.Nodes.Count(n => n.Inputs.Contains(name)) != 1 || model.Outputs.Any(o => o.Name == name)) return null;
            if (model.RuntimeInputs.Any(r => r.Name == name)) break;
            if (model.Nodes.SingleOrDefault(n => n.Outputs.Contains(name)) is not { OpType: "QuantizeLinear" or "DequantizeLinear" or "Quant" or "IntQuant" } producer)
                return null;
            name = producer.Inputs[0];
        }
        var input = new Value(quantize.Input.Name, quantize.Input.Type with { Shape = target });
        var output = new Value(v.Name, v.Type with { Shape = target });
        graph.Inputs[i] = input;
        graph.Replace(quantize, new Quantize(quantize.Name, input, output, quantize.Target, quantize.Quant) { Qonnx = quantize.Qonnx });
        return output;
    }

    /// <summary>Relu or Clip of the integer codes themselves, between QuantizeLinear and DequantizeLinear: torch writes Clip(q, , 127)
    /// there for its reduced activation range (quant_min 0, quant_max 127). Bounds are codes of the tensor's ONNX type; the
    /// result keeps the tensor's quantization (a QClamp, fused into the layer before it when there is one).</summary>
    Abs ClampCodes(OnnxNode node, Quantized q, Abs?[] ins)
    {
        int offset = q.OnnxType == DType.UInt8 ? 128 : 0;
        int Code(int i, int unbounded)
        {
            if (ins.ElementAtOrDefault(i) is not Const c) return unbounded;
            if (c.T.Size != 1 || c.T.Data[0] != Math.Floor(c.T.Data[0]))
                throw Error(node, $"{node.OpType} of integer codes needs integer scalar bounds, got {ShapeUtil.Format(c.T.Shape)} '{node.Inputs[i]}'");
            return (int)Math.Clamp(c.T.Data[0] - offset, -128, 127);
        }
        // Relu: max(q, 0) in the ONNX type, the held code -offset.
        int lo = node.OpType == "Relu" ? -offset : Code(1, -128), hi = node.OpType == "Relu" ? 127 : Code(2, 127);
        var v = Emit(new QClamp(Legal(node.Name), q.V, NewValue(node.Outputs[0], q.V.Type), lo, Math.Max(lo, hi)));
        return new Quantized(v, q.OnnxType);
    }

    /// <summary>A Relu or Clip of a dequantized tensor that a node other than a QuantizeLinear reads (torch's fake-quantized
    /// models: DequantizeLinear, Relu, Gemm): the clamp in the tensor's own quantization, exact when each finite bound is a
    /// code of it (Relu's 0 is the zero point), so the reader gets a dequantized tensor again.</summary>
    RealView ClampInPlace(OnnxNode reader, PendingClamp pc)
    {
        var q = pc.V.Type.Quant!;
        foreach (var bound in new[] { pc.Lo, pc.Hi }.Where(double.IsFinite))
        {
            double code = bound / q.Scale + q.ZeroPoint;
            if (Math.Abs(code - Math.Round(code)) > 1e-6 && code > -128 && code < 127)
                throw Error(reader, $"{reader.OpType} reads the Relu/Clip '{pc.Node}' without a QuantizeLinear between, and its bound {bound} is no code of " +
                    $"its input's quantization (scale {q.Scale}, zero point {q.ZeroPoint}): quantize the Relu/Clip's output");
        }
        var (lo, hi) = QuantizedBounds(pc.Lo, pc.Hi, q, FullRange);
        return new RealView(Emit(new QClamp(Legal(pc.Node), pc.V, NewValue(pc.Node + "_clamped", pc.V.Type), lo, hi)));
    }

    Abs LowerReshape(OnnxNode node, Abs?[] ins)
    {
        var lv = AsLayout(ins[0]) ?? ins[0] switch
        {
            RealView rv => new LayoutView(rv.V, [], "td", 1, null),
            Quantized q => new LayoutView(q.V, [], "td", 1, q.OnnxType),
            _ => throw Error(node, $"{node.OpType} input must be a quantized tensor or its dequantized view"),
        };
        // A "td" view is the stored tensor (of any rank: a 1-D one is no [1, n] to ONNX's 0 entries).
        int[] shape = lv.Axes == "td" ? lv.V.Type.Shape.ToArray() : lv.Shape, target;
        try
        {
            target = node.OpType == "Flatten"
                ? OnnxEvaluator.FlattenTarget(shape, (int)node.Int("axis", 1))
                : OnnxEvaluator.ReshapeTarget(shape, ConstIn(node, ins, 1, "shape").T.Data.Select(d => (long)d).ToArray(), node.Int("allowzero", 0) != 0);
        }
        catch (ArgumentException e) { throw Error(node, $"shape mismatch: {e.Message}"); }
        if (LowerActReshape(node, ins, target) is { } layout) return layout;
        if (lv.Axes == "td" && ShapeUtil.Rows(lv.V.Type.Shape) != ShapeUtil.Rows(target) && ReshapeOnHost(node, lv.V, target) is { } onHost)
            return lv.OnnxType is { } ht ? new Quantized(onHost, ht) : new RealView(onHost);
        var v = lv.V;
        var o = NewValue(node.Outputs[0], v.Type with { Shape = target });
        var r = Emit(new Reshape(Legal(node.Name), v, o, target));
        return lv.OnnxType is { } t ? new Quantized(r, t) : new RealView(r);
    }

    Abs LowerQLinearMatMul(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not Quantized a) throw Error(node, "QLinearMatMul input A must be a quantized activation");
        if (ins[3] is not Const b || !b.T.Type.IsInteger()) throw Error(node, "QLinearMatMul input B must be constant integer weights");
        var (aq, _) = ActivationQuant(node, [null, ins[1], ins[2]]);
        if (!a.V.Type.Quant!.SameAs(aq)) throw Error(node, "QLinearMatMul A parameters differ from those A was quantized with");
        var bq = new QConst(b.T, ConstIn(node, ins, 4, "b_scale").T, ConstIn(node, ins, 5, "b_zero_point").T, 1, () => b.T);
        var (k, n, w, scale) = Weights(node, bq, false, 1);
        if (a.V.Type.Shape.Count == 0 || a.V.Type.Shape[^1] != k) throw Error(node, $"shape mismatch: A is {ShapeUtil.Format(a.V.Type.Shape)} but B needs {k} input features");
        var (yq, onnxType) = ActivationQuant(node, [null, ins[6], ins[7]]);
        var pm = new PendingMatMul(a.V, k, n, w, scale, null, double.NegativeInfinity, double.PositiveInfinity, node.Name);
        return new Quantized(EmitGemm(node, pm, yq, FullRange), onnxType);
    }

    /// <summary>Turns a pending product plus its output quantization into an integer QGemm whose codes stay in range. A
    /// float bias is rounded (half to even) to the accumulator's scale sx·sw[n]: it moves an output by at most half a
    /// quantum of the accumulator, 0.5·sx·sw[n]/sy output quanta before the requantizer rounds.</summary>
    Value EmitGemm(OnnxNode quantNode, PendingMatMul pm, QuantParams yq, (int Lo, int Hi) range)
    {
        var xq = pm.X.Type.Quant!;
        double sx = xq.Scale, sy = yq.Scale;
        var bias = new int[pm.N];
        var real = new double[pm.N];
        for (int j = 0; j < pm.N; j++)
        {
            double accScale = sx * pm.WeightScale[j];
            double b = pm.BiasReal is null ? 0 : Math.Round(pm.BiasReal[j] / accScale, MidpointRounding.ToEven);
            if (b is < int.MinValue or > int.MaxValue)
                throw Error(quantNode, $"bias of output channel {j} does not fit int32 at scale {accScale}");
            bias[j] = (int)b;
            real[j] = accScale / sy;
        }
        var (lo, hi) = QuantizedBounds(pm.ClampLo, pm.ClampHi, yq, range);
        var shape = pm.X.Type.Shape.Take(pm.X.Type.Shape.Count - 1).Append(pm.N).ToArray();
        var y = NewValue(quantNode.Outputs[0], new TensorType(DType.Int8, shape, yq));
        return Emit(new QGemm(Legal(pm.Node), pm.X, y)
        {
            K = pm.K, N = pm.N, Weights = pm.Weights, Bias = bias, RealMultiplier = real,
            InputZeroPoint = (int)xq.ZeroPoint, ClampMin = lo, ClampMax = hi, OutputQuant = yq, QonnxBits = pm.QonnxBits,
        });
    }
}

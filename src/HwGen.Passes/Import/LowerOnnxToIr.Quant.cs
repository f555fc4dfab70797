using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Passes.Import;

public sealed partial class LowerOnnxToIr
{
    /// <summary>Per-tensor activation quantization parameters, validated, with uint8 moved to int8.</summary>
    (QuantParams Quant, DType OnnxType) ActivationQuant(OnnxNode node, Abs?[] ins)
    {
        var scale = ConstIn(node, ins, 1, "scale").T;
        var zp = ins.ElementAtOrDefault(2) is { } z ? (z as Const ?? throw Error(node, "zero point (input 2) must be a constant")).T : null;
        if (scale.Size != 1 || (zp is not null && zp.Size != 1))
            throw Error(node, "per-channel quantization of activations is not supported (scale and zero point must be scalars)");
        var type = zp?.Type ?? DType.UInt8;
        if (type is not (DType.Int8 or DType.UInt8)) throw Error(node, $"zero point type {type.Name()} is not supported (int8 or uint8)");
        double s = scale.Data[0];
        if (!(s > 0) || double.IsInfinity(s)) throw Error(node, $"scale must be positive and finite, got {s}");
        long z0 = zp is null ? 0 : (long)zp.Data[0];
        var (lo, hi) = type.Range();
        if (z0 < lo || z0 > hi) throw Error(node, $"zero point {z0} is out of range for {type.Name()}");
        return (QuantParams.PerTensor((float)s, type == DType.UInt8 ? z0 - 128 : z0), type);
    }

    /// <summary>Every int8 code: the range of a QuantizeLinear (QONNX Quant narrows it).</summary>
    static readonly (int Lo, int Hi) FullRange = (-128, 127);

    Abs LowerQuantize(OnnxNode node, Abs?[] ins)
    {
        var (q, onnxType) = ActivationQuant(node, ins);
        if (QuantizeLayout(node, ins[0], q, onnxType, FullRange) is { } layout) return layout;
        if (ins[0] is MaskedScores { OnnxType: null } masked) return QuantizeMasked(node, masked, q, onnxType);
        if (QuantizeFunction(node, ins[0], q, onnxType) is { } function) return function;
        return new Quantized(QuantizeTo(node, ins[0], q, FullRange, null), onnxType);
    }

    /// <summary>
    /// Quantizes an abstract real value to <paramref name="q"/> with its codes inside <paramref name="range"/>: a graph input
    /// on the host (QONNX's rule when <paramref name="qonnx"/> is set), a pending product as a QGemm, a pending Add or Sub as a QAdd, a nonlinear pattern as
    /// its unit, a quantized value with other parameters (after a ReLU/Clip or not) as a QRequant, with the same ones as
    /// itself or a QClamp. Every requantization in hardware rounds half toward +infinity.
    /// </summary>
    Value QuantizeTo(OnnxNode node, Abs? x, QuantParams q, (int Lo, int Hi) range, QonnxRule? qonnx)
    {
        // One op per quantization of a value: ONNX Runtime's DedicatedQDQPair gives each reader of a tensor its own QuantizeLinear
        // with the same parameters, which would otherwise compute the layer (or unit) once per reader.
        if (x is null) return QuantizeOnce(node, x, q, range, qonnx);
        var done = quantizedAlready.TryGetValue(x, out var list) ? list : quantizedAlready[x] = [];
        if (done.FirstOrDefault(d => d.Q.SameAs(q) && d.Range == range && d.Qonnx == qonnx) is { V: { } v }) return v;
        var y = QuantizeOnce(node, x, q, range, qonnx);
        done.Add((q, range, qonnx, y));
        return y;
    }

    /// <summary>The quantizations of each abstract value made so far (by reference: two equal pending products are two products).</summary>
    readonly Dictionary<Abs, List<(QuantParams Q, (int Lo, int Hi) Range, QonnxRule? Qonnx, Value V)>> quantizedAlready = new(ReferenceEqualityComparer.Instance);

    Value QuantizeOnce(OnnxNode node, Abs? x, QuantParams q, (int Lo, int Hi) range, QonnxRule? qonnx)
    {
        if (x is not null && EmitNonlinear(node, x, q) is { } nonlinear)
            return range == FullRange ? nonlinear : throw Error(node, $"the nonlinear units give 8-bit codes; quantizing their output to [{range.Lo}, {range.Hi}] is not supported");
        switch (x)
        {
            case FloatInput f:
                var v = NewValue(node.Outputs[0], new TensorType(DType.Int8, f.V.Type.Shape, q));
                return Emit(new Quantize(Legal(node.Name), f.V, v, DType.Int8, q) { Qonnx = qonnx });
            case RealView rv when rv.V.Type.Quant!.SameAs(q) && range == FullRange:
                return rv.V;  // Q(DQ(x)) with the same parameters: x itself
            case RealView rv when rv.V.Type.Quant!.SameAs(q):
                return Emit(new QClamp(Legal(node.Name), rv.V, NewValue(node.Outputs[0], rv.V.Type), range.Lo, range.Hi));
            case RealView rv:
                return EmitRequant(node, rv.V, q, double.NegativeInfinity, double.PositiveInfinity, range);
            case PendingMatMul pm:
                return EmitGemm(node, pm, q, range);
            case PendingAdd pa:
                return EmitAdd(node, pa, q, range);
            case PendingActMatMul pm:
                return EmitActMatMul(node, pm, q, range);
            case PendingClamp pc when pc.V.Type.Quant!.SameAs(q):
                var (lo, hi) = QuantizedBounds(pc.Lo, pc.Hi, q, range);
                return Emit(new QClamp(Legal(pc.Node), pc.V, NewValue(node.Outputs[0], pc.V.Type), lo, hi));
            case PendingClamp pc:
                return EmitRequant(node, pc.V, q, pc.Lo, pc.Hi, range);
            default:
                throw Error(node, $"{node.OpType} input is not a float input or a computation on quantized tensors");
        }
    }

    /// <summary>A requantization of x, times <paramref name="factor"/>, to q (real multiplier sx·factor/sy), clamped to the real
    /// bounds [lo, hi] and the code range.</summary>
    Value EmitRequant(OnnxNode node, Value x, QuantParams q, double lo, double hi, (int Lo, int Hi) range, double factor = 1)
    {
        var (cl, ch) = QuantizedBounds(lo, hi, q, range);
        var y = NewValue(node.Outputs[0], new TensorType(DType.Int8, x.Type.Shape, q));
        return Emit(new QRequant(Legal(node.Name), x, y) { OutputQuant = q, RealMultiplier = x.Type.Quant!.Scale * factor / q.Scale, ClampMin = cl, ClampMax = ch });
    }

    /// <summary>Real clamp bounds as int8 bounds in the output's quantization (infinite bounds: the int8 range), inside
    /// the code range.</summary>
    static (int Lo, int Hi) QuantizedBounds(double lo, double hi, QuantParams q, (int Lo, int Hi) range)
    {
        int l = double.IsNegativeInfinity(lo) ? -128 : (int)Math.Max(-128, QuantMath.Quantize(lo, q.Scale, q.ZeroPoint, DType.Int8));
        int h = double.IsPositiveInfinity(hi) ? 127 : (int)Math.Min(127, QuantMath.Quantize(hi, q.Scale, q.ZeroPoint, DType.Int8));
        l = Math.Max(l, range.Lo);
        h = Math.Min(h, range.Hi);
        return l <= h ? (l, h) : (h, h);
    }

    Abs LowerDequantize(OnnxNode node, Abs?[] ins)
    {
        int axis = (int)node.Int("axis", 1);
        switch (ins[0])
        {
            case Const c:
                if (!c.T.Type.IsInteger()) throw Error(node, "DequantizeLinear input must be an integer tensor");
                var scale = ConstIn(node, ins, 1, "scale").T;
                var zp = ins.ElementAtOrDefault(2) is { } z ? (z as Const ?? throw Error(node, "zero point must be a constant")).T : null;
                if (scale.Data.Any(s => !(s > 0) || double.IsInfinity(s)))
                    throw Error(node, $"scale must be positive and finite, got {scale.Data.First(s => !(s > 0) || double.IsInfinity(s))}");
                if (zp is not null && zp.Type != c.T.Type)
                    throw Error(node, $"zero point type {zp.Type.Name()} differs from the input type {c.T.Type.Name()}");
                return new QConst(c.T, scale, zp, axis < 0 ? axis + c.T.Rank : axis, () => OnnxEvaluator.Evaluate(node, [c.T, scale, zp], model.Path)[0]);
            case LayoutView { OnnxType: not null } lv:
                return DequantizeLayout(node, lv, ins);
            case MaskedScores { OnnxType: not null } ms:
                return DequantizeMasked(node, ms, ins);
            case QuantizedFunction qf:
                return DequantizeFunction(node, qf, ins);
            case Quantized qv:
                var (q, _) = ActivationQuant(node, ins);
                if (!qv.V.Type.Quant!.SameAs(q))
                    throw Error(node, "DequantizeLinear parameters differ from those the tensor was quantized with");
                return new RealView(qv.V);
            default:
                throw Error(node, "DequantizeLinear input must be a quantized tensor or an integer constant");
        }
    }

    Abs LowerCast(OnnxNode node, Abs?[] ins)
    {
        var to = OnnxLoader.ToDType((int)node.Int("to", 1), model.Path, node.Name);
        return ins[0] switch
        {
            Quantized qv when qv.OnnxType == to => qv,  // exporters insert no-op casts between Q and DQ
            PendingIntMatMul pm when !to.IsInteger() => pm with { AsFloat = true },
            _ => throw Error(node, $"Cast to {to.Name()} of a non-constant tensor is not supported in the hardware flow"),
        };
    }
}

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

    Abs LowerQuantize(OnnxNode node, Abs?[] ins)
    {
        var (q, onnxType) = ActivationQuant(node, ins);
        if (ins[0] is { } x && EmitNonlinear(node, x, q) is { } nonlinear) return new Quantized(nonlinear, onnxType);
        switch (ins[0])
        {
            case FloatInput f:
                var v = NewValue(node.Outputs[0], new TensorType(DType.Int8, f.V.Type.Shape, q));
                return new Quantized(Emit(new Quantize(Legal(node.Name), f.V, v, DType.Int8, q)), onnxType);
            case RealView rv when rv.V.Type.Quant!.SameAs(q):
                return new Quantized(rv.V, onnxType);  // Q(DQ(x)) with the same parameters: x itself
            case RealView:
                throw Error(node, "requantizing a tensor to different parameters is not supported yet");
            case PendingMatMul pm:
                return new Quantized(EmitGemm(node, pm, q), onnxType);
            case PendingClamp pc when pc.V.Type.Quant!.SameAs(q):
                var r = NewValue(node.Outputs[0], pc.V.Type);
                var (lo, hi) = QuantizedBounds(pc.Lo, pc.Hi, q);
                return new Quantized(Emit(new QClamp(Legal(pc.Node), pc.V, r, lo, hi)), onnxType);
            case PendingClamp:
                throw Error(node, "ReLU/Clip that changes quantization parameters is not supported yet");
            default:
                throw Error(node, "QuantizeLinear input is not a float input or a computation on quantized tensors");
        }
    }

    /// <summary>Real clamp bounds as int8 bounds in the output's quantization (infinite bounds: the int8 range).</summary>
    static (int Lo, int Hi) QuantizedBounds(double lo, double hi, QuantParams q) => (
        double.IsNegativeInfinity(lo) ? -128 : (int)Math.Max(-128, QuantMath.Quantize(lo, q.Scale, q.ZeroPoint, DType.Int8)),
        double.IsPositiveInfinity(hi) ? 127 : (int)Math.Min(127, QuantMath.Quantize(hi, q.Scale, q.ZeroPoint, DType.Int8)));

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
                var real = OnnxEvaluator.Evaluate(node, [c.T, scale, zp], model.Path)[0];
                return new QConst(c.T, scale, zp, axis < 0 ? axis + c.T.Rank : axis, real);
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

using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// QONNX quantizers (Quant / IntQuant / BipolarQuant, as Brevitas exports them): a quantizer is a QuantizeLinear and
/// DequantizeLinear in one node, so its output is the real view of a quantized value. On a constant (weights) it keeps
/// the integer codes, per tensor or per channel (a scale and zero point with one axis of length > 1); on an activation
/// it quantizes per tensor with its bit width, signedness and narrow range as the code range (unsigned codes are held
/// as int8 - 128, like uint8), through the same paths as QuantizeLinear: the host (graph inputs, with QONNX's rule and
/// rounding mode), a QGemm's requantizer, a QRequant or a QClamp. In hardware every requantizer rounds half toward
/// +infinity, whatever the rounding mode: within one quantum of QONNX for each mode. Codes of fewer than 8 bits run as int8.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    Abs LowerQonnx(OnnxNode node, Abs?[] ins)
    {
        var spec = QonnxQuant.Of(node, node.OpType == "BipolarQuant" ? null : ConstIn(node, ins, 3, "bit width").T, model.Path);
        var scale = ConstIn(node, ins, 1, "scale").T;
        var zp = spec.Bipolar ? new Tensor(DType.Float32, [], [0]) : ConstIn(node, ins, 2, "zero point").T;
        if (scale.Data.Any(s => !(s > 0) || !double.IsFinite(s)))
            throw Error(node, $"scale must be positive and finite, got {scale.Data.First(s => !(s > 0) || !double.IsFinite(s))}");
        if (zp.Data.Any(z => z != Math.Floor(z)))
            throw Error(node, $"zero point {zp.Data.First(z => z != Math.Floor(z))} is not an integer; the hardware takes integer zero points");
        var (min, max) = spec.Range;
        if (zp.Data.Any(z => z < min || z > max))
            throw Error(node, $"zero point {zp.Data.First(z => z < min || z > max)} is outside the code range [{min}, {max}]");
        if (ins[0] is Const c) return QonnxConstant(node, spec, c.T, scale, zp);
        if (spec.Bits > 8)
            throw Error(node, $"bit width {spec.Bits} of an activation is not supported: the datapath is 8-bit (2 to 8 bits; wider Quant only on constants such as a bias)");
        if (spec.Bipolar)
            throw Error(node, "BipolarQuant of activations is not supported (the requantizers round to the nearest code, not to the sign); BipolarQuant of weights is");
        if (scale.Size != 1 || zp.Size != 1)
            throw Error(node, "per-channel quantization of activations is not supported (scale and zero point must be scalars)");
        int offset = spec.Signed ? 0 : 128;
        var q = QuantParams.PerTensor((float)scale.Data[0], (long)zp.Data[0] - offset);
        var rule = new QonnxRule((int)min, (int)max, spec.Rounding, offset);
        var range = ((int)min - offset, (int)max - offset);
        return QuantizeLayout(node, ins[0], q, null, range) ?? new RealView(QuantizeTo(node, ins[0], q, range, rule));
    }

    /// <summary>Quantized constant: codes from QONNX's rule, the per-channel axis from the shape of scale and zero point.</summary>
    QConst QonnxConstant(OnnxNode node, QonnxQuant spec, Tensor w, Tensor scale, Tensor zp)
    {
        int axis = -1;
        foreach (var p in new[] { scale, zp })
        {
            if (p.Size == 1) continue;
            var dims = Enumerable.Range(0, p.Rank).Where(d => p.Shape[d] != 1).ToArray();
            int a = dims.Length == 1 && p.Rank <= w.Rank ? dims[0] + w.Rank - p.Rank : -2;
            if (a < 0 || p.Shape[dims[0]] != w.Shape[a] || (axis >= 0 && axis != a))
                throw Error(node, $"scale and zero point must be per tensor or along one axis of the weights {ShapeUtil.Format(w.Shape)}; got {ShapeUtil.Format(scale.Shape)} and {ShapeUtil.Format(zp.Shape)}");
            axis = a;
        }
        int n = axis < 0 ? 1 : w.Shape[axis];
        var inner = axis < 0 ? 1 : ShapeUtil.Size(w.Shape[(axis + 1)..]);
        double At(Tensor p, long i) => p.Size == 1 ? p.Data[0] : p.Data[i / inner % n];
        var codes = new double[w.Size];
        for (long i = 0; i < w.Size; i++)
        {
            codes[i] = spec.Code(w.Data[i], At(scale, i), At(zp, i));
            if (double.IsNaN(codes[i])) throw Error(node, "a weight is NaN");
        }
        Tensor Real()
        {
            var real = new double[w.Size];
            for (long i = 0; i < w.Size; i++) real[i] = spec.Real(w.Data[i], At(scale, i), At(zp, i));
            return new Tensor(DType.Float32, w.Shape, real);
        }
        // Codes of more than 8 bits (a bias behind Brevitas's Int32Bias) are int32: a layer reads a bias as reals, weights must fit int8.
        var type = spec.Bits > 8 ? DType.Int32 : spec.Signed ? DType.Int8 : DType.UInt8;
        var flat = (Tensor p) => new Tensor(p.Type, p.Size == 1 ? [] : [n], p.Data.ToArray());
        return new QConst(new Tensor(type, w.Shape, codes), flat(scale), new Tensor(type, flat(zp).Shape, zp.Data.ToArray()),
            Math.Max(axis, 0), Real) { QonnxBits = spec.Bipolar ? 1 : spec.Bits };
    }
}

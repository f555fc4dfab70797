using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Onnx;

/// <summary>
/// A QONNX quantizer node as HwGen reads it: <c>Quant</c> (renamed <c>IntQuant</c>) with inputs x, scale, zeropt,
/// bitwidth and attributes signed (default 1), narrow (default 1, as qonnx declares them) and rounding_mode (default
/// ROUND), or <c>BipolarQuant</c> with inputs x, scale. Domains qonnx.custom_op.general, finn.custom_op.general (older FINN models) and onnx.brevitas (Brevitas's export before
/// QONNX's cleanup renames it).
/// Bit widths 2 to 32 (1-bit signed is BipolarQuant's job): the hardware takes 2 to 8, wider only on constants that are no
/// weights (Brevitas's Int32Bias writes a bias behind a 32-bit Quant), which the importer checks.
/// </summary>
public sealed record QonnxQuant(bool Bipolar, int Bits, bool Signed, bool Narrow, Rounding Rounding)
{
    public static readonly IReadOnlyList<string> Domains = ["qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas"];
    public static readonly IReadOnlyList<string> Ops = ["Quant", "IntQuant", "BipolarQuant"];

    public static bool Is(OnnxNode n) => Domains.Contains(n.Domain) && Ops.Contains(n.OpType);

    /// <summary>QONNX's integer range [min_int, max_int]; BipolarQuant's codes are -1 and 1.</summary>
    public (long Min, long Max) Range => Bipolar ? (-1, 1) : QuantMath.QonnxRange(Bits, Signed, Narrow);

    /// <summary>Reads the node's attributes and bit width (a constant), validated.</summary>
    public static QonnxQuant Of(OnnxNode node, Tensor? bitwidth, string file)
    {
        if (node.OpType == "BipolarQuant") return new QonnxQuant(true, 1, true, false, Rounding.HalfEven);
        if (bitwidth is null || bitwidth.Size != 1)
            throw HwGenException.At(file, node.Name, $"{node.OpType} needs a scalar constant bit width (input 3)");
        double b = bitwidth.Data[0];
        if (b != Math.Floor(b) || b is < 2 or > 32)
            throw HwGenException.At(file, node.Name, $"{node.OpType} bit width {b} is not supported (integers 2 to 32; BipolarQuant for 1 bit)");
        string mode = node.Str("rounding_mode", "ROUND");
        var rounding = RoundingModes.Parse(mode) ?? throw HwGenException.At(file, node.Name,
            $"{node.OpType} rounding_mode '{mode}' is not one of ROUND, HALF_EVEN, CEIL, FLOOR, ROUND_TO_ZERO, DOWN, UP, HALF_UP, HALF_DOWN");
        return new QonnxQuant(false, (int)b, Flag(node, "signed", file), Flag(node, "narrow", file), rounding);
    }

    /// <summary>A 0/1 attribute (default 1, as qonnx declares signed and narrow); any other value is an error.</summary>
    static bool Flag(OnnxNode node, string name, string file)
    {
        long v = node.Int(name, 1);
        return v switch
        {
            0 => false,
            1 => true,
            _ => throw HwGenException.At(file, node.Name, $"{node.OpType} attribute {name} is {v}; QONNX allows 0 or 1"),
        };
    }

    /// <summary>The integer code of one value: QuantMath.QonnxQuantize (x / scale + zeropt, clamp, round); BipolarQuant's
    /// 1 where x >= 0, else -1.</summary>
    public double Code(double x, double scale, double zeroPoint) => Bipolar
        ? (x >= 0 ? 1 : -1)
        : QuantMath.QonnxQuantize(x, scale, zeroPoint, Range.Min, Range.Max, Rounding);

    /// <summary>The node's float output for one value: (code - zeropt) * scale in float32.</summary>
    public double Real(double x, double scale, double zeroPoint) => QuantMath.QonnxDequantize(Code(x, scale, zeroPoint), scale, zeroPoint);
}

public static partial class OnnxEvaluator
{
    /// <summary>QONNX Quant/IntQuant/BipolarQuant on float32, scale and zero point broadcast to x (qonnx semantics).</summary>
    static Tensor Qonnx(OnnxNode node, Tensor?[] x, string file)
    {
        var input = x.ElementAtOrDefault(0) ?? throw HwGenException.At(file, node.Name, $"{node.OpType} needs input 0");
        var scale = x.ElementAtOrDefault(1) ?? throw HwGenException.At(file, node.Name, $"{node.OpType} needs a scale (input 1)");
        var q = QonnxQuant.Of(node, x.ElementAtOrDefault(3), file);
        var zp = q.Bipolar ? null : x.ElementAtOrDefault(2) ?? throw HwGenException.At(file, node.Name, $"{node.OpType} needs a zero point (input 2)");
        foreach (var (p, what) in new[] { (scale, "scale"), (zp, "zero point") })
            if (p is not null && (p.Shape.Length > input.Shape.Length || p.Shape.Where((d, k) => d != 1 && d != input.Shape[k + input.Shape.Length - p.Shape.Length]).Any()))
                throw HwGenException.At(file, node.Name, $"{node.OpType} {what} of shape {ShapeUtil.Format(p.Shape)} does not broadcast to {ShapeUtil.Format(input.Shape)}");
        var os = BroadcastOffsets(scale.Shape, input.Shape);
        var oz = zp is null ? null : BroadcastOffsets(zp.Shape, input.Shape);
        var y = new double[input.Size];
        for (int i = 0; i < y.Length; i++) y[i] = q.Real(input.Data[i], scale.Data[os[i]], zp is null ? 0 : zp.Data[oz![i]]);
        return new Tensor(DType.Float32, input.Shape, y);
    }
}

using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;

namespace HwGen.Rtl.Engines.Host;

/// <summary>
/// What the host and the layout do, with no hardware of their own: Quantize writes a graph input into device memory
/// and Dequantize reads a graph output back (ONNX semantics, or QONNX Quant's for a Quantize with a QONNX rule; a NaN
/// input becomes the code of 0 - offset, as ONNX's does); a Reshape that keeps the leading rows is a layout no-op
/// (activations are stored feature-major per row); a QClamp has golden semantics only (FuseClampIntoGemm folds it
/// into the requantizer; one left over has no engine); a QConstant is written into the off-chip image by the compiler.
/// </summary>
public sealed class HostEngine : IEngine
{
    public string Name => "host";

    public bool Implements(Op op) => op is Quantize or Dequantize or Reshape or QClamp or QConstant;

    public bool Takes(Op op, HwConfig c) => op is Quantize or Dequantize or Reshape or QConstant;

    public Op Place(Op op, HwConfig c) => op is Reshape r && ShapeUtil.Rows(r.Input.Type.Shape) != ShapeUtil.Rows(r.NewShape)
        ? throw new HwGenException($"node '{r.Name}': reshape {ShapeUtil.Format(r.Input.Type.Shape)} -> {ShapeUtil.Format(r.NewShape)} moves data between rows, which needs a layout engine HwGen does not have yet")
        : op;

    public ResultStorage Storage(Op op) => op switch
    {
        Quantize => ResultStorage.New, Reshape => ResultStorage.SameAsInput, QConstant => ResultStorage.Constant, _ => ResultStorage.None,
    };

    public Tensor Evaluate(Op op, Tensor[] x) => op switch
    {
        Quantize { Qonnx: { } r } q => new Tensor(q.Target, x[0].Shape, x[0].Data.Select(v =>
            QuantMath.QonnxQuantize(v, q.Quant.Scale, q.Quant.ZeroPoint + r.Offset, r.Min, r.Max, r.Rounding) is var c && double.IsNaN(c) ? 0 : c - r.Offset).ToArray()),
        Quantize q => new Tensor(q.Target, x[0].Shape,
            x[0].Data.Select(v => (double)QuantMath.Quantize(v, q.Quant.Scale, q.Quant.ZeroPoint, q.Target)).ToArray()),
        Dequantize d => new Tensor(DType.Float32, x[0].Shape,
            x[0].Data.Select(v => QuantMath.Dequantize((long)v, d.Input.Type.Quant!.Scale, d.Input.Type.Quant.ZeroPoint)).ToArray()),
        Reshape r => x[0].Reshaped(r.NewShape.ToArray()),
        QClamp c => x[0].Map(v => Math.Clamp(v, c.Min, c.Max)),
        QConstant k => new Tensor(DType.Int8, k.Output.Type.Shape.ToArray(), k.Codes.Select(v => (double)v).ToArray()),
        _ => throw new InvalidOperationException($"host: no semantics for {op.Mnemonic}"),
    };
}

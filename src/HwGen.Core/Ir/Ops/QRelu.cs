namespace HwGen.Core.Ir;

/// <summary>ReLU on a quantized tensor whose output keeps the input's quantization: max(q, zero point).</summary>
public sealed record QRelu(string Name, Value Input, Value Output) : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public override string Mnemonic => "hw.qrelu";
    public override TensorType InferType() => Inputs[0].Type;
    public override string? Check() => Inputs[0].Type.Quant is null ? "input has no quantization parameters" : null;
}

namespace HwGen.Core.Ir;

/// <summary>
/// A constant int8 tensor in activation layout, with per-tensor quantization: the operand of an Add or Sub of an activation
/// and a constant (a positional embedding, a bias after a MatMul of two activations), broadcast at import to the shape of
/// the activation it meets. The compiler writes its codes into the off-chip image; the schedule loads them like a graph
/// input's.
/// </summary>
public sealed record QConstant(string Name, Value Output, IReadOnlyList<int> Codes) : Op(Name, [], Output)
{
    public override string Mnemonic => "hw.qconstant";
    public override TensorType InferType() => Output.Type;
    public override IEnumerable<(string, Text.Attr)> Attributes() => [("codes", Text.Attr.Of(Codes))];

    public static QConstant FromText(string name, IReadOnlyList<Value> operands, Value output, Text.AttrMap a) => operands.Count == 0
        ? new(name, output, a.IntList("codes"))
        : throw new HwGenException($"hw.qconstant takes no operands, got {operands.Count}");

    public override string? Check()
    {
        var t = Output.Type;
        if (t.Elem != DType.Int8) return $"a constant must be i8, got {t.Elem.Name()}";
        if (t.Quant is null || t.Quant.PerChannel) return "a constant needs per-tensor quantization";
        if (Codes.Count != t.Size) return $"{Codes.Count} codes for a tensor of {t.Size} elements";
        return Codes.All(c => c is >= -128 and <= 127) ? null : "codes must be int8";
    }
}

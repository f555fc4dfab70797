namespace HwGen.Core.Ir;

/// <summary>Reinterprets a tensor with a new shape of the same size (row-major order kept).</summary>
public sealed record Reshape(string Name, Value Input, Value Output, IReadOnlyList<int> NewShape)
    : Op(Name, [Input], Output)
{
    /// <summary>The operand (always Inputs[0], so rewrites of Inputs are seen here).</summary>
    public Value Input => Inputs[0];

    public override string Mnemonic => "hw.reshape";
    public override TensorType InferType() => Inputs[0].Type with { Shape = NewShape.ToArray() };
    public override IEnumerable<(string, Text.Attr)> Attributes() => [("shape", Text.Attr.Of(NewShape))];
    public override string? Check() =>
        ShapeUtil.Size(NewShape) != Inputs[0].Type.Size ? $"cannot reshape {ShapeUtil.Format(Inputs[0].Type.Shape)} to {ShapeUtil.Format(NewShape)}" : null;
}

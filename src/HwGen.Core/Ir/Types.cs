namespace HwGen.Core.Ir;

/// <summary>Affine quantization: real = (q - ZeroPoint) * Scale, per tensor (one entry) or per channel along Axis.</summary>
public sealed record QuantParams(IReadOnlyList<double> Scales, IReadOnlyList<long> ZeroPoints, int Axis = -1)
{
    public bool PerChannel => Scales.Count > 1;
    public double Scale => Scales[0];
    public long ZeroPoint => ZeroPoints[0];
    public static QuantParams PerTensor(double scale, long zeroPoint) => new([scale], [zeroPoint]);

    public bool SameAs(QuantParams o) =>
        Axis == o.Axis && Scales.SequenceEqual(o.Scales) && ZeroPoints.SequenceEqual(o.ZeroPoints);

    public override string ToString() => PerChannel
        ? $"q<axis={Axis}, scales={Scales.Count}, zp={ZeroPoints[0]}..>"
        : $"q<{Scale:R}, {ZeroPoint}>";
}

/// <summary>The type of an IR value: element type with bit width and signedness, optional quantization, shape.</summary>
public sealed record TensorType(DType Elem, IReadOnlyList<int> Shape, QuantParams? Quant = null)
{
    public int Bits => Elem.Bits();
    public bool Signed => Elem.IsSigned();
    public int Size => ShapeUtil.Size(Shape);
    public override string ToString() =>
        $"{Elem.Name()}{ShapeUtil.Format(Shape)}" + (Quant is null ? "" : " " + Quant);
}

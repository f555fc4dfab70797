using HwGen.Cli;
using HwGen.Core;
using HwGen.Onnx.Proto;
using HwGen.Tests.Support;

namespace HwGen.Tests.Onnx;

/// <summary>
/// The transformer examples written as Brevitas-style QONNX (<see cref="QdqToQonnx"/>: every activation's QDQ pair one Quant,
/// including those after the head split and merge views, P·V with heads, torch's sequence-first views and the scaled q): they
/// import to the same integer ops as the QDQ models and give the same golden outputs.
/// </summary>
public sealed class QonnxTransformerTests
{
    [Theory]
    [InlineData("tiny_vit_digits/model.onnx")]
    [InlineData("torch_encoder_digits/model_op17.onnx")]
    public void A_transformer_as_qonnx_is_the_qdq_model(string example)
    {
        using var dir = new TempDir();
        var qdq = Path.Combine(Repo.Root, "examples", example);
        var path = dir.File("qonnx.onnx");
        File.WriteAllBytes(path, QdqToQonnx.Convert(File.ReadAllBytes(qdq)));
        Assert.Contains(ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node, n => n.OpType == "Quant");
        var config = HwConfig.Default with { Scheduler = "greedy" };
        var c = Flow.Compile(path, config);
        var reference = Flow.Compile(qdq, config);
        Assert.Equal(reference.Graph.Ops.Select(o => o.GetType().Name), c.Graph.Ops.Select(o => o.GetType().Name));
        var shape = ModelProto.Parser.ParseFrom(File.ReadAllBytes(qdq)).Graph.Input[0].Type.TensorType.Shape.Dim
            .Select(d => d.HasDimValue ? (int)d.DimValue : 1).ToArray();
        var rng = new Random(5);
        var x = new Tensor(DType.Float32, shape, Enumerable.Range(0, ShapeUtil.Size(shape)).Select(_ => rng.NextDouble() * 2 - 1).ToArray());
        Assert.Equal(Flow.Golden(reference, [x]).Outputs[0].Data, Flow.Golden(c, [x]).Outputs[0].Data);
    }
}

using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Onnx;
using HwGen.Reference;
using HwGen.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using DenseTensorF = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Tensor = HwGen.Core.Tensor;
using Xunit.Abstractions;

namespace HwGen.Tests.Reference;

/// <summary>
/// The hardware model (b) against ONNX semantics (a) and against ONNX Runtime, on real QDQ models. They differ only
/// by rounding (fixed-point multiplier with round-half-up against float scales with round-half-even), so the
/// largest difference must be at most one output quantum.
/// </summary>
public sealed class GoldenAgreementTests(ITestOutputHelper log)
{
    internal static Tensor RunOrt(string modelPath, Tensor x)
    {
        using var session = new InferenceSession(modelPath);
        var name = session.InputMetadata.Keys.First();
        var input = new DenseTensorF(x.Data.Select(v => (float)v).ToArray(), x.Shape);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(name, input)]);
        var y = results.First().AsTensor<float>();
        return new Tensor(DType.Float32, y.Dimensions.ToArray(), y.ToArray().Select(v => (double)v).ToArray());
    }

    /// <summary>Largest |a - b| in quanta of the output scale.</summary>
    static double MaxQuanta(Tensor a, Tensor b, double scale)
    {
        Assert.Equal(a.Size, b.Size);
        return a.Data.Zip(b.Data).Max(p => Math.Abs(p.First - p.Second)) / scale;
    }

    (double HwVsOnnx, double OrtVsOnnx, double HwMismatchShare) Measure(string modelPath, Tensor x, int batch)
    {
        var c = Flow.Compile(modelPath, HwConfig.Default, batch: batch);
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { [c.Model.RuntimeInputs.First().Name] = x }).Values.First();
        var ort = RunOrt(modelPath, x);
        double scale = c.Design.OutputTensors.First().Value.Type.Quant!.Scale;
        double share = hw.Data.Zip(onnx.Data).Count(p => p.First != p.Second) / (double)hw.Size;
        return (MaxQuanta(hw, onnx, scale), MaxQuanta(ort, onnx, scale), share);
    }

    /// <summary>ONNX semantics (a) of the nonlinear ops against ONNX Runtime, as exporters write them.</summary>
    [Theory]
    [InlineData(NonlinearKind.Gelu)]
    [InlineData(NonlinearKind.Silu)]
    [InlineData(NonlinearKind.Sigmoid)]
    [InlineData(NonlinearKind.Tanh)]
    [InlineData(NonlinearKind.Erf)]
    [InlineData(NonlinearKind.Softmax)]
    [InlineData(NonlinearKind.LayerNorm)]
    [InlineData(NonlinearKind.LayerNormExpanded)]
    public void Onnx_semantics_of_nonlinear_ops_agree_with_onnx_runtime(NonlinearKind kind)
    {
        using var dir = new TempDir();
        var path = NonlinearModels.Build(kind, 5, 16).Save(dir.File("m.onnx"));
        var x = NonlinearModels.Input(4, 5, 16);
        var onnx = OnnxEvaluator.Run(OnnxLoader.Load(path), new Dictionary<string, Tensor> { ["x"] = x }).Values.Single();
        var ort = RunOrt(path, x);
        double q = kind is NonlinearKind.Sigmoid or NonlinearKind.Softmax ? 1 / 256.0 : kind is NonlinearKind.Tanh or NonlinearKind.Erf ? 1 / 128.0 : 1 / 32.0;
        double worst = MaxQuanta(ort, onnx, q);
        log.WriteLine($"{kind}: ONNX Runtime vs (a) {worst} quanta");
        Assert.True(worst <= 1, $"{kind}: {worst} quanta");
    }

    /// <summary>Every held-back digit of an example through the hardware model, ONNX semantics and ONNX Runtime, one
    /// row at a time (ONNX Runtime runs the exported batch of 1); returns the outputs and the output scale.</summary>
    static (List<(Tensor Hw, Tensor Onnx, Tensor Ort)> Rows, double Scale) PerDigit(string example)
    {
        var x = Npy.Read(Path.Combine(Repo.Root, $"examples/{example}/test_x.npy"));
        var model = Repo.Example(example);
        var c1 = Flow.Compile(model, HwConfig.Default);
        var input = c1.Model.RuntimeInputs.First().Name;
        var rows = new List<(Tensor, Tensor, Tensor)>();
        for (int r = 0; r < x.Shape[0]; r++)
        {
            var row = new Tensor(DType.Float32, [1, 64], x.Data.Skip(r * 64).Take(64).ToArray());
            rows.Add((HardwareModel.Outputs(c1.Graph, [row])[0],
                OnnxEvaluator.Run(c1.Model, new Dictionary<string, Tensor> { [input] = row }).Values.First(), RunOrt(model, row)));
        }
        return (rows, c1.Design.OutputTensors.First().Value.Type.Quant!.Scale);
    }

    /// <summary>ffn_digits (GELU, LayerNorm, softmax through NN-LUT tables): ONNX Runtime equals ONNX semantics within one
    /// quantum; the hardware model approximates them (measured and bounded here, 16-entry tables), and predicts the same
    /// class as ONNX Runtime on nearly every digit.</summary>
    [Fact]
    public void Example_ffn_digits_hardware_model_stays_close_to_onnx_runtime()
    {
        var (rows, scale) = PerDigit("ffn_digits");
        double hwVsOrt = rows.Max(r => MaxQuanta(r.Hw, r.Ort, scale)), ortVsOnnx = rows.Max(r => MaxQuanta(r.Ort, r.Onnx, scale));
        double mean = rows.Sum(r => r.Hw.Data.Zip(r.Ort.Data).Sum(p => Math.Abs(p.First - p.Second)) / scale) / (rows.Count * 10);
        int sameClass = rows.Count(r => Array.IndexOf(r.Hw.Data, r.Hw.Data.Max()) == Array.IndexOf(r.Ort.Data, r.Ort.Data.Max()));
        log.WriteLine($"ffn_digits, {rows.Count} test digits: max |hardware - ORT| = {hwVsOrt} quanta (mean {mean:F3}), max |ORT - onnx| = {ortVsOnnx}, same class {sameClass}/{rows.Count}");
        Assert.True(ortVsOnnx <= 1.0001, $"ONNX Runtime differs from ONNX semantics by {ortVsOnnx} quanta");
        // One-quantum differences of GELU and LayerNorm move the logits, and softmax amplifies them near p = 0.5.
        Assert.True(hwVsOrt <= 32, $"hardware model differs from ONNX Runtime by {hwVsOrt} quanta");
        Assert.True(sameClass >= rows.Count - 5, $"only {sameClass} of {rows.Count} digits get ONNX Runtime's class");
    }

    [Fact]
    public void Example_mlp_digits_agrees_within_one_quantum()
    {
        var (rows, scale) = PerDigit("mlp_digits");
        double hwVsOnnx = rows.Max(r => MaxQuanta(r.Hw, r.Onnx, scale)), ortVsOnnx = rows.Max(r => MaxQuanta(r.Ort, r.Onnx, scale));
        int differ = rows.Sum(r => r.Hw.Data.Zip(r.Onnx.Data).Count(p => p.First != p.Second));
        log.WriteLine($"mlp_digits, {rows.Count} test digits: max |hardware - onnx| = {hwVsOnnx} quanta ({differ} of {rows.Count * 10} outputs differ), max |ORT - onnx| = {ortVsOnnx} quanta");
        Assert.True(hwVsOnnx <= 1.0001, $"hardware model differs from ONNX semantics by {hwVsOnnx} quanta");
        Assert.True(ortVsOnnx <= 1.0001, $"ONNX Runtime differs from ONNX semantics by {ortVsOnnx} quanta");
    }

    /// <summary>qonnx_mlp_digits (QONNX, 4-bit weights; ONNX Runtime cannot run QONNX ops): the hardware model against
    /// QONNX semantics (a) on all 450 held-back digits in one batch.</summary>
    [Fact]
    public void Example_qonnx_mlp_digits_stays_close_to_qonnx_semantics()
    {
        var x = Npy.Read(Path.Combine(Repo.Root, "examples/qonnx_mlp_digits/test_x.npy"));
        var c = Flow.Compile(Repo.Example("qonnx_mlp_digits"), HwConfig.Default, batch: x.Shape[0]);
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { ["pixels"] = x }).Values.Single();
        double scale = c.Design.OutputTensors.First().Value.Type.Quant!.Scale, worst = MaxQuanta(hw, onnx, scale);
        int differ = hw.Data.Zip(onnx.Data).Count(p => p.First != p.Second);
        int rows = x.Shape[0], sameClass = Enumerable.Range(0, rows).Count(r =>
            Array.IndexOf(hw.Data, hw.Data.Skip(r * 10).Take(10).Max(), r * 10, 10) == Array.IndexOf(onnx.Data, onnx.Data.Skip(r * 10).Take(10).Max(), r * 10, 10));
        log.WriteLine($"qonnx_mlp_digits: max |hardware - (a)| = {worst} quanta, {differ} of {hw.Size} outputs differ, same class {sameClass}/{rows}");
        Assert.True(worst <= 1.0001, $"hardware model differs from QONNX semantics by {worst} quanta");
        Assert.True(sameClass >= rows - 2, $"only {sameClass} of {rows} digits get (a)'s class");
    }

    [Theory]
    [InlineData(1, QdqStyle.GemmRelu)]
    [InlineData(2, QdqStyle.MatMulAdd)]
    [InlineData(3, QdqStyle.QLinearMatMul)]
    [InlineData(4, QdqStyle.MatMulInteger)]
    public void Random_models_agree_within_one_quantum(int seed, QdqStyle style)
    {
        using var dir = new TempDir();
        var path = QdqModels.Mlp(seed, 16, [32, 24, 12], style).Save(dir.File("m.onnx"));
        var (hw, ort, share) = Measure(path, QdqModels.Input(seed, 16, 32), 16);
        log.WriteLine($"{style}: max |hardware - onnx| = {hw} quanta ({share:P1} of outputs differ), max |ORT - onnx| = {ort} quanta");
        Assert.True(hw <= 1.0001, $"hardware model differs by {hw} quanta");
        Assert.True(ort <= 1.0001, $"ONNX Runtime differs by {ort} quanta");
    }
}

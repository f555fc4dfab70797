using HwGen.Cli;
using HwGen.Onnx;
using HwGen.Rtl.Engines;
using HwGen.Tests.Reference;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Support;

/// <summary>The three models of a compiled QDQ model on one input: the hardware model (b), ONNX semantics (a) and ONNX Runtime.</summary>
public static class Agreement
{
    /// <summary>(a) within one output quantum of ONNX Runtime and (b) within one of (a), on every element; the outputs vary
    /// (more than <paramref name="minDistinct"/> distinct values), so the check is not vacuous.</summary>
    public static void WithinOneQuantum(string modelPath, Compiled c, Tensor x, double quantum, int minDistinct = 5)
    {
        var hw = HardwareModel.Outputs(c.Graph, [x])[0];
        var onnx = OnnxEvaluator.Run(c.Model, new Dictionary<string, Tensor> { [c.Model.RuntimeInputs.First().Name] = x }).Values.Single();
        var ort = GoldenAgreementTests.RunOrt(modelPath, x);
        Assert.True(onnx.Data.Zip(ort.Data).All(p => Math.Abs(p.First - p.Second) <= quantum * 1.0001), "ONNX semantics vs ONNX Runtime");
        Assert.True(hw.Data.Zip(onnx.Data).All(p => Math.Abs(p.First - p.Second) <= quantum * 1.0001), "hardware model vs ONNX semantics");
        Assert.True(hw.Data.Distinct().Count() > minDistinct, "the outputs hardly vary");
    }
}

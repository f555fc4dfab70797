using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Passes;
using HwGen.Passes.Import;
using HwGen.Rtl.Engines;
using HwGen.Tests.Support;

namespace HwGen.Tests.Passes;

/// <summary>FuseRequantIntoGemm evaluated before and after: one rounding instead of two moves an output by at most
/// ⌊r2/2⌋ + 1 quanta, most outputs stay, and the fused clamp keeps the ReLU.</summary>
public sealed class FuseRequantTests
{
    [Theory]
    [InlineData(RequantLayout.GemmDqQ)]
    [InlineData(RequantLayout.GemmRelu)]
    [InlineData(RequantLayout.GemmClip)]
    public void Fusing_a_requantization_into_its_gemm_moves_outputs_by_at_most_the_stated_bound(RequantLayout layout)
    {
        using var dir = new TempDir();
        var (model, r2, _) = QuantImportTests.Requant(layout);
        var g = LowerOnnxToIr.Run(OnnxLoader.Load(model.Save(dir.File("m.onnx"))), 24);
        Assert.Equal(["hw.quantize", "hw.qgemm", "hw.qrequant", "hw.dequantize"], g.Ops.Select(o => o.Mnemonic));
        new InferShapes().Run(g, HwConfig.Default);
        var x = QdqModels.Input(11, 24, 16);
        var before = HardwareModel.Outputs(g, [x])[0];
        var rq = g.Ops.OfType<QRequant>().Single();
        new FuseRequantIntoGemm().Run(g, HwConfig.Default);
        Verifier.Verify(g, "FuseRequantIntoGemm");
        Assert.Equal(["hw.quantize", "hw.qgemm", "hw.dequantize"], g.Ops.Select(o => o.Mnemonic));
        var gemm = g.Ops.OfType<QGemm>().Single();
        Assert.True(gemm.OutputQuant.SameAs(rq.OutputQuant));
        Assert.True(gemm.ClampMin >= rq.ClampMin && gemm.ClampMax <= rq.ClampMax);
        var after = HardwareModel.Outputs(g, [x])[0];
        double scale = rq.OutputQuant.Scale;
        double worst = before.Data.Zip(after.Data).Max(p => Math.Abs(p.First - p.Second)) / scale;
        int same = before.Data.Zip(after.Data).Count(p => p.First == p.Second);
        Assert.True(worst <= Math.Floor(r2 / 2) + 1 + 1e-4, $"fusion moved an output by {worst} quanta (r2 = {r2})");
        Assert.True(same >= before.Size * 2 / 3, $"only {same} of {before.Size} outputs unchanged");
    }
}

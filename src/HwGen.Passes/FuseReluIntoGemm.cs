using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// QRelu(QGemm(x)) with the QGemm used only there becomes one QGemm whose lower clamp is the output zero
/// point: max(q, zp) after requantization equals the requantizer clamping at zp.
/// </summary>
public sealed class FuseReluIntoGemm : IPass
{
    public string Name => nameof(FuseReluIntoGemm);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var relu in graph.Ops.OfType<QRelu>().ToList())
        {
            if (graph.ProducerOf(relu.Input) is not QGemm gemm || graph.UseCount(gemm.Output) != 1) continue;
            var fused = gemm with { ClampMin = Math.Max(gemm.ClampMin, gemm.OutputZeroPoint) };
            graph.Replace(gemm, fused);
            graph.RemoveAndForward(relu, gemm.Output);
        }
    }
}

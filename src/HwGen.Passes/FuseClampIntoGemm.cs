using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// QClamp(QGemm(x)) with the QGemm used only there becomes one QGemm whose clamp is the intersection:
/// clamping after requantization is what the requantizer's own clamp does (ReLU, ReLU6, Clip).
/// </summary>
public sealed class FuseClampIntoGemm : IPass
{
    public string Name => nameof(FuseClampIntoGemm);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var clamp in graph.Ops.OfType<QClamp>().ToList())
        {
            if (graph.ProducerOf(clamp.Input) is not QGemm gemm || graph.UseCount(gemm.Output) != 1) continue;
            int lo = Math.Max(gemm.ClampMin, clamp.Min), hi = Math.Min(gemm.ClampMax, clamp.Max);
            if (lo > hi) lo = hi = Math.Clamp(clamp.Min, gemm.ClampMin, gemm.ClampMax);  // disjoint ranges: a constant
            graph.Replace(gemm, gemm with { ClampMin = lo, ClampMax = hi });
            graph.RemoveAndForward(clamp, gemm.Output);
        }
    }
}

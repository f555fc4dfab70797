using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;

namespace HwGen.Passes;

/// <summary>
/// QRequant(QGemm(x)) with the QGemm used only there becomes one QGemm that requantizes its accumulator straight to the
/// requant's parameters: real multiplier r1·r2 per column, the requant's output quantization, and as clamp the
/// requant's own intersected with the QGemm's bounds carried through the requantization (a monotone map, so clamping
/// before it equals clamping after it at the mapped bounds). The fused op rounds once where the pair rounded twice: an
/// output moves by at most ⌊r2/2⌋ + 1 quanta from the unfused result (the first rounding's half quantum times r2,
/// plus the second rounding), and lies closer to the real-valued product. Runs before LegalizeRequant.
/// </summary>
public sealed class FuseRequantIntoGemm : IPass
{
    public string Name => nameof(FuseRequantIntoGemm);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var rq in graph.Ops.OfType<QRequant>().ToList())
        {
            if (graph.ProducerOf(rq.Input) is not QGemm gemm || graph.UseCount(gemm.Output) != 1) continue;
            // A multiplier no fixed point holds stays unfused: LegalizeRequant names it.
            if (rq.RealMultiplier >= 1 << 30) continue;
            var (m, s) = QuantMath.FixedPoint(rq.RealMultiplier);
            int Map(int code) => QuantMath.Requantize(code - gemm.OutputZeroPoint, m, s, rq.OutputZeroPoint, -128, 127);
            int lo = Math.Max(rq.ClampMin, Map(gemm.ClampMin)), hi = Math.Min(rq.ClampMax, Map(gemm.ClampMax));
            if (lo > hi) lo = hi = Math.Clamp(Map(gemm.ClampMin), rq.ClampMin, rq.ClampMax);  // disjoint ranges: a constant
            var fused = gemm with
            {
                Inputs = gemm.Inputs, RealMultiplier = gemm.RealMultiplier.Select(r => r * rq.RealMultiplier).ToArray(),
                OutputQuant = rq.OutputQuant, ClampMin = lo, ClampMax = hi, Multiplier = [], Shift = [],
            };
            gemm.Output.Type = fused.InferType();
            graph.Replace(gemm, fused);
            graph.RemoveAndForward(rq, gemm.Output);
        }
    }
}

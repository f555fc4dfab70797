using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;

namespace HwGen.Passes;

/// <summary>
/// Replaces each QGemm's and QRequant's real requantization multiplier by an integer multiplier m in [2^30, 2^31) and
/// a shift s (real ≈ m·2^-s), each QAdd's two by multipliers below 2^15 with one shift, and proves a QGemm's int32 accumulator cannot overflow for any int8 input.
/// Rounding rule of the hardware: add 2^(s-1), arithmetic shift right (round half toward +infinity).
/// </summary>
public sealed class LegalizeRequant : IPass
{
    public string Name => nameof(LegalizeRequant);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var g in graph.Ops.OfType<QGemm>().ToList())
        {
            var mult = new int[g.N];
            var shift = new int[g.N];
            for (int n = 0; n < g.N; n++)
            {
                if (!(g.RealMultiplier[n] > 0) || !double.IsFinite(g.RealMultiplier[n]))
                    throw new HwGenException($"node '{g.Name}': requantization multiplier {g.RealMultiplier[n]} of channel {n} is not positive and finite (check the scales)");
                if (g.RealMultiplier[n] >= 1 << 30)
                    throw new HwGenException($"node '{g.Name}': requantization multiplier {g.RealMultiplier[n]} of channel {n} is too large (scales are inconsistent)");
                (mult[n], shift[n]) = QuantMath.FixedPoint(g.RealMultiplier[n]);
                long bound = Math.Abs((long)g.Bias[n]);
                for (int k = 0; k < g.K; k++) bound += 255L * Math.Abs(g.Weights[k * g.N + n]);
                if (bound > int.MaxValue)
                    throw new HwGenException($"node '{g.Name}': the int32 accumulator of channel {n} can overflow (|acc| up to {bound})");
            }
            graph.Replace(g, g with { Multiplier = mult, Shift = shift });
        }
        foreach (var r in graph.Ops.OfType<QRequant>().ToList())
        {
            if (r.RealMultiplier >= 1 << 30)
                throw new HwGenException($"node '{r.Name}': requantization multiplier {r.RealMultiplier} is too large (scales are inconsistent)");
            var (m, s) = QuantMath.FixedPoint(r.RealMultiplier);
            graph.Replace(r, r with { Multiplier = m, Shift = s });
        }
        foreach (var m in graph.Ops.OfType<QMatMul>().ToList())
        {
            var (mult, _, s) = QuantMath.FixedPointPair(m.RealMultiplier, m.RealMultiplier, QAdd.MultiplierBits, QAdd.MaxShift) ?? throw new HwGenException(
                $"node '{m.Name}': requantization multiplier {m.RealMultiplier:G6} (the operands' scales over the output scale) is out of range: " +
                $"the activation matmul engine takes multipliers below 2^{QAdd.MultiplierBits - 1} (scales are inconsistent)");
            graph.Replace(m, m with { Multiplier = mult, Shift = s });
        }
        foreach (var a in graph.Ops.OfType<QAdd>().ToList())
        {
            double ra = a.RealMultipliers[0], rb = a.RealMultipliers[1];
            var (ma, mb, s) = QuantMath.FixedPointPair(ra, Math.Abs(rb), QAdd.MultiplierBits, QAdd.MaxShift) ?? throw new HwGenException(
                $"node '{a.Name}': requantization multipliers {ra:G6} and {Math.Abs(rb):G6} (input scales over the output scale) are out of range: " +
                $"the element-wise unit takes ratios below 2^{QAdd.MultiplierBits - 1} (scales are inconsistent)");
            graph.Replace(a, a with { Multipliers = [ma, Math.Sign(rb) * mb], Shift = s });
        }
    }
}

using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.ActMatMul;
using HwGen.Rtl.Engines.BitMod;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Engines.Eltwise;
using HwGen.Rtl.Engines.Host;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Rtl.Engines.SparseAttention;
using HwGen.Rtl.Engines.Tlmm;

namespace HwGen.Rtl.Engines;

/// <summary>
/// The registered engines, in the order selection asks them (the first that takes an op gets it). Adding an engine is
/// its folder plus one line here.
/// </summary>
public static class EngineRegistry
{
    public static IReadOnlyList<IEngine> All { get; } =
    [
        new HostEngine(),
        new BitModEngine(),
        new TlmmEngine(),
        new DenseEngine(),
        new VectorEngine(),
        new EltwiseEngine(),
        new ActMatMulEngine(),
        new SparseAttentionEngine(),
    ];

    public static IEnumerable<IDeviceEngine> Devices => All.OfType<IDeviceEngine>();

    public static IEngine? ByName(string name) => All.FirstOrDefault(e => e.Name == name);

    /// <summary>Why the engines asked before <paramref name="engine"/> did not take <paramref name="op"/> (their
    /// <see cref="IEngine.Declined"/>, joined), or what the engine says when none gives a reason.</summary>
    public static string Why(IEngine engine, Op op, HwConfig c, string otherwise)
    {
        var reasons = All.TakeWhile(e => e.Name != engine.Name).Select(e => e.Declined(op, c)).OfType<string>().ToList();
        return reasons.Count == 0 ? otherwise : string.Join("; ", reasons);
    }

    /// <summary>The engine an op runs on: the one it was placed on, else the first that implements it; null when none does.</summary>
    public static IEngine? Of(Op op) => op.Engine is { } n ? ByName(n) : All.FirstOrDefault(e => e.Implements(op));
}

using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.ActMatMul;
using HwGen.Rtl.Program;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>
/// The activation matmul engine's overlapped stages (<see cref="QmmTimer"/>): a prefetched QMM loads its A lines while the one
/// before streams B, a fenced one waits for the drain, and the tiny ViT's scores keep the engine's MACs busy. The RTL follows
/// the same timing: the RTL tests of <see cref="ActMatMulTests"/> compare simulated cycles with the estimate.
/// </summary>
public sealed class QmmPipelineTests
{
    static QMatMul Scores()
    {
        using var dir = new TempDir();
        var path = AttentionModels.Head(7, 8, 12, 8).Save(dir.File("m.onnx"));
        return Flow.Compile(path, HwConfig.Default).Graph.Ops.OfType<QMatMul>().First();
    }

    /// <summary>One block of 4 rows of A against 4 rows of B, one group: A in bank 1, B in bank 0.</summary>
    static Qmm Step(QMatMul op, int a, int b, int dst, bool last = true) => new(op, 0, 0)
    {
        ALine = a, BLine = b, Groups = 1, Rows = 4, ARows = 4, LastLanes = 4, First = true, Last = last, DstLine = dst, ABank = 1, BBank = 0,
    };

    [Fact]
    public void A_prefetched_qmm_loads_while_the_one_before_streams_and_one_through_port_b_after_it()
    {
        var op = Scores();
        var first = Step(op, 4096, 0, 100, last: false).After(null);
        var second = (Qmm)Step(op, 4100, 8, 104).After(first);
        Assert.True(second.Prefetch);
        Assert.Contains(second.Accesses(HwConfig.Default), x => x.Port == SpadPort.C && !x.Write);
        var timer = new QmmTimer();
        var t1 = timer.Take(first, 0);
        long reads = Qmm.ReadsOf(1, 4, 4);
        // Taken when the first one's B lines start: the second's B lines follow the first's without a gap.
        Assert.Equal(t1.Ready, timer.ReadyFor(second));
        var t2 = timer.Take(second, t1.Ready);
        Assert.Equal(4, t2.Busy);
        Assert.True(t2.Retire > t1.Retire);

        var serial = (Qmm)Step(op, 4100, 8, 104).After(first) with { Prefetch = false };
        var timer2 = new QmmTimer();
        var u1 = timer2.Take(first, 0);
        long ready = timer2.ReadyFor(serial);
        Assert.Equal(reads, ready);   // once the first one's reads are over
        Assert.Equal(reads, timer2.Take(serial, ready).Busy);
        Assert.True(u1.Retire > 0);
    }

    [Fact]
    public void A_qmm_that_reads_a_result_still_draining_waits_for_the_drain()
    {
        var op = Scores();
        var first = (Qmm)Step(op, 4096, 0, 100).After(null);
        var reader = (Qmm)Step(op, 4100, 102, 104).After(first);   // reads line 102, which the first one's drain writes
        var other = (Qmm)Step(op, 4100, 8, 104).After(first);
        Assert.True(reader.Fence);
        Assert.False(other.Fence);
        var timer = new QmmTimer();
        var t = timer.Take(first, 0);
        Assert.Equal(t.Retire + 1, timer.ReadyFor(reader));
        Assert.True(timer.ReadyFor(other) < t.Retire);
    }

    /// <summary>The tiny ViT's scores at 4x8: the QMMs of Q·Kᵀ stream back to back (A and B in different banks), so the
    /// engine's arrayRows² MACs work at least 90 % of its busy cycles (each used to load A, stream B and write in turn: 35 %).</summary>
    [Fact]
    public void The_tiny_vit_scores_keep_the_engine_busy()
    {
        var c = Flow.Compile(Repo.Example("tiny_vit_digits"), new HwConfig { ArrayRows = 4, ArrayCols = 8, Scheduler = "greedy" });
        var scores = c.Graph.Ops.OfType<QMatMul>().Where(m => m.TransposeB).ToList();
        Assert.Equal(2, scores.Count);
        long macs = scores.Sum(m => (long)m.Batch * m.Heads * m.M * m.N * m.K);
        var program = c.Design.Program;
        long busy = program.Select((i, n) => i is Qmm q && scores.Contains(q.Op) ? c.Design.Timings[n].Busy : 0).Sum();
        Assert.All(program.OfType<Qmm>().Where(q => scores.Contains(q.Op)), q => Assert.NotEqual(q.ABank, q.BBank));
        Assert.True(macs / (double)busy / 16 >= 0.9, $"{macs} MACs in {busy} busy cycles");
    }
}

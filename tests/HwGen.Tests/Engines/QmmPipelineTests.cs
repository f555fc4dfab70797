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

    /// <summary>The tiny ViT's attention at 4x8: the QMMs of Q·Kᵀ stream back to back (A and B in different banks), and so do
    /// those of P·V, two blocks of V's rows each (one block alone streams 4 lines, fewer cycles than a fetch: 67 %), so the
    /// engine's arrayRows² MACs work at least 90 % of its busy cycles in each (each used to load A, stream B and write in turn: 35 %).
    /// At batch 16 the activations do not all fit: the scheduler takes the rows in chunks, and nothing spills (layer by layer
    /// 98,240 bytes moved, 65,792 of them spills).</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void The_tiny_vit_attention_keeps_the_engine_busy(int batch)
    {
        var c = Flow.Compile(Repo.Example("tiny_vit_digits"), new HwConfig { ArrayRows = 4, ArrayCols = 8, Scheduler = "greedy" }, batch: batch);
        Assert.Equal(0, c.Design.Traffic.NonCompulsory);
        var program = c.Design.Program;
        foreach (bool scores in new[] { true, false })
        {
            var ops = c.Graph.Ops.OfType<QMatMul>().Where(m => m.TransposeB == scores && m.M > 1).ToList();
            Assert.Equal(2, ops.Count);
            long macs = ops.Sum(m => (long)m.Batch * m.Heads * m.M * m.N * m.K);
            long busy = program.Select((i, n) => i is Qmm q && ops.Contains(q.Op) ? c.Design.Timings[n].Busy : 0).Sum();
            Assert.All(program.OfType<Qmm>().Where(q => ops.Contains(q.Op)), q => Assert.NotEqual(q.ABank, q.BBank));
            Assert.True(macs / (double)busy / 16 >= 0.9, $"{(scores ? "Q·Kᵀ" : "P·V")}: {macs} MACs in {busy} busy cycles");
        }
    }

    /// <summary>Axpy QMMs of one output line whose A and B lines advance by constant strides (either way) merge, up to a tile's
    /// groups, in one bank each; the merged one reads what the two did.</summary>
    [Fact]
    public void Axpy_qmms_of_one_output_line_merge_when_their_lines_are_strided()
    {
        var op = Scores();
        var c = new HwConfig { ArrayRows = 4, ArrayCols = 8 };
        Qmm Axpy(int a, int b, bool first, bool last) => Step(op, a, b, 100, last) with { Axpy = true, First = first };
        var merged = (Qmm)Axpy(4096, 40, true, false).MergedWith(Axpy(4100, 32, false, true), c)!;
        Assert.Equal((2, 4, -8, true, true), (merged.Groups, merged.AStride, merged.BStride, merged.First, merged.Last));
        Assert.Equal([new LineRange(4096, 8), new LineRange(32, 12)], merged.Reads(c));
        Assert.Null(merged.MergedWith(Axpy(4104, 24, false, true), c));                                       // a tile holds 2 groups
        Assert.Null(Axpy(4096, 40, true, false).MergedWith(Axpy(4100, 32, false, true) with { BBank = 1 }, c));  // another bank
        Assert.Null(Axpy(4096, 40, true, true).MergedWith(Axpy(4100, 32, false, true), c));                    // another output line
        Assert.Null(Axpy(4096, 40, true, false).MergedWith(Axpy(4100, 32, false, true) with { DstLine = 104 }, c));
        Assert.Null(Step(op, 4096, 40, 100, false).MergedWith(Step(op, 4100, 32, 100) with { First = false }, c));   // dot mode
    }
}

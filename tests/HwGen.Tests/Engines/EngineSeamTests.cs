using System.Text.RegularExpressions;
using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Engines.Dma;
using HwGen.Rtl.Engines.NnLut;
using HwGen.Rtl.Program;
using HwGen.Tests.Support;

namespace HwGen.Tests.Engines;

/// <summary>The engine seam: one registry, one field table per instruction format from which encoder and decoder both come.</summary>
public sealed partial class EngineSeamTests
{
    static IEnumerable<InstructionFormat> AllFormats => Dma.Formats.Concat(EngineRegistry.Devices.SelectMany(e => e.Formats));

    [Fact]
    public void Opcodes_and_engine_names_are_unique()
    {
        var opcodes = AllFormats.Select(f => f.Opcode).ToList();
        Assert.Equal(opcodes.Count, opcodes.Distinct().Count());
        Assert.Equal(EngineRegistry.All.Count, EngineRegistry.All.Select(e => e.Name).Distinct().Count());
        Assert.Equal(AllFormats.Count(), AllFormats.Select(f => f.Mnemonic).Distinct().Count());
    }

    [Fact]
    public void Overlapping_fields_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new InstructionFormat("BAD", 9,
            [new("a", 1, 0, 8, FieldKind.Bits, _ => 0), new("b", 1, 4, 8, FieldKind.Bits, _ => 0)]));
        Assert.Throws<ArgumentException>(() => new InstructionFormat("BAD", 9, [new("opcode_clash", 0, 2, 4, FieldKind.Bits, _ => 0)]));
        Assert.Throws<ArgumentException>(() => new InstructionFormat("BAD", 9, [new("two_words", 2, 20, 16, FieldKind.Bits, _ => 0)]));
    }

    [GeneratedRegex(@"^wire (signed )?(\[[^\]]+\] )?(\w+) = instr\[(\d+)(?: \+: AW|:(\d+))?\];$")]
    private static partial Regex DecodeRe();

    /// <summary>Every instruction the examples' programs hold, decoded with the Verilog decoder's own bit positions,
    /// gives back the values the C# encoder was given.</summary>
    [Theory]
    [InlineData("mlp_digits")]
    [InlineData("ffn_digits")]
    public void The_verilog_decoder_reads_back_what_the_encoder_wrote(string example)
    {
        var c = Flow.Compile(Path.Combine(Repo.Root, "examples", example, "model.onnx"), new HwConfig { Scheduler = "greedy" });
        int aw = HwGen.Rtl.Emit.RtlEmitter.Prepare(c.Design).SpadAw;
        var seen = new HashSet<string>();
        foreach (var i in c.Design.Program)
        {
            var words = i.Encode();
            Assert.Equal((uint)i.Format.Opcode, words[0] & 0xf);
            var decode = i.Format.Decode();
            Assert.Equal(i.Format.Fields.Count, decode.Count);
            for (int f = 0; f < decode.Count; f++)
            {
                var m = DecodeRe().Match(decode[f].Verilog);
                Assert.True(m.Success, decode[f].Verilog);
                int lo = m.Groups[5].Success ? int.Parse(m.Groups[5].Value) : int.Parse(m.Groups[4].Value);
                int hi = m.Groups[5].Success ? int.Parse(m.Groups[4].Value) : decode[f].Verilog.Contains("+: AW") ? lo + aw - 1 : lo;
                ulong bits = 0;
                for (int b = hi; b >= lo; b--) bits = bits << 1 | (words[b / 32] >> (b % 32) & 1);
                long value = i.Format.Fields[f].Get(i);
                long got = m.Groups[1].Success ? (long)(bits << (64 - (hi - lo + 1))) >> (64 - (hi - lo + 1)) : (long)bits;
                Assert.Equal(value, got);
                seen.Add(i.Format.Mnemonic);
            }
        }
        Assert.Contains("GEMM", seen);
        Assert.Contains("LOAD", seen);
        if (example == "ffn_digits") Assert.Contains("VEC", seen);
    }

    /// <summary>Lines move in slots as wide as their data: at batch 1 the 64-feature input is 16 lines of 4 features and moves
    /// 64 bytes (8 beats of 8), and the DMA overlaps the next transfer's requests with the last one's data.</summary>
    [Fact]
    public void The_dma_moves_only_the_bytes_of_its_lines_and_pipelines_its_transfers()
    {
        var d = Flow.Compile(Repo.Example("mlp_digits"), new HwConfig { Scheduler = "greedy" }, batch: 1).Design;
        var input = d.Program.OfType<Load>().First();
        Assert.Equal(16, input.Lines);
        Assert.Equal(4, input.Slot.SlotBytes);
        Assert.Equal(64, input.OffChipBytes(d.Config));
        // Weights, parameters, the input and the 10 outputs: nothing else, but each tile's parameters in whole lines (3 lines of 32
        // bytes for 8 columns of 9 bytes) and beat padding.
        var layers = d.Graph.Ops.OfType<QGemm>().ToList();
        long compulsory = layers.Sum(g => (long)g.K * g.N + 9L * g.N) + 64 + 10;
        long paramPadding = layers.Sum(g => g.Tiling!.ColTiles * (3 * 32L - 9 * 8));
        Assert.InRange(d.OffChipBytesMoved, compulsory, compulsory + paramPadding + 100);
        // Some transfer is taken before the one ahead of it retires: its requests go out while that one's data arrives.
        var loads = Enumerable.Range(0, d.Program.Count).Where(i => d.Program[i] is Load).ToList();
        Assert.Contains(loads.Zip(loads.Skip(1)), p => d.Timings[p.Second].Start < d.Timings[p.First].Retire);
        // Lines pack into beats both ways, and whole-beat slots span beats.
        var c = new HwConfig { PortBytes = 8 };
        Assert.Equal((1, 0), (LineSlot.For(8, c).BeatsPerLine, LineSlot.For(8, c).LinesPerBeatLog2));
        Assert.Equal((4, 1, 3L), (LineSlot.For(3, c).SlotBytes, LineSlot.For(3, c).LinesPerBeatLog2, LineSlot.For(3, c).Beats(5)));   // 2 to a beat
        Assert.Equal((8, 5L), (LineSlot.For(5, c).SlotBytes, LineSlot.For(5, c).Beats(5)));
        var wide = new HwConfig { ArrayRows = 16, ArrayCols = 16, PortBytes = 8 };
        Assert.Equal((16, 2, 10L), (LineSlot.For(12, wide).SlotBytes, LineSlot.For(12, wide).BeatsPerLine, LineSlot.For(12, wide).Beats(5)));
    }

    [Fact]
    public void A_value_that_does_not_fit_its_field_is_an_error()
    {
        var load = new Load(1L << 32, 0, 1, LineSlot.For(1, HwConfig.Default), "t");
        Assert.Throws<HwGenException>(() => load.Encode());
    }

    /// <summary>Every op the compiler ends with is placed on the engine the registry gives, and its golden kernel is that
    /// engine's: the registry is the one place that maps ops to engines.</summary>
    [Fact]
    public void Every_compiled_op_runs_on_a_registered_engine()
    {
        var c = Flow.Compile(Path.Combine(Repo.Root, "examples", "ffn_digits", "model.onnx"), new HwConfig { Scheduler = "greedy" });
        foreach (var op in c.Graph.Ops)
        {
            var e = EngineRegistry.Of(op);
            Assert.NotNull(e);
            Assert.True(e!.Implements(op), $"{op.Name} on {e.Name}");
        }
        Assert.Equal(["dense", "nnlut"], c.Design.Engines.Select(e => e.Name));
        Assert.All(c.Graph.Ops.OfType<QGemm>(), g => Assert.IsType<DenseEngine>(EngineRegistry.Of(g)));
        Assert.All(c.Graph.Ops.OfType<QNonlinear>(), n => Assert.IsType<VectorEngine>(EngineRegistry.Of(n)));
        // Costs add up by owner: every instruction but END works for an op of the graph.
        Assert.All(c.Design.Program.Where(i => i is not End), i => Assert.Contains(i.Owner!, c.Graph.Ops));
        // An op's cycles are its units' busy cycles; the units overlap, so the run is shorter than their sum plus the fetches.
        var cfg = c.Design.Config;
        Assert.Equal(c.Design.Timings.Sum(t => t.Busy), c.Design.Costs.Values.Sum(x => x.Cycles));
        Assert.True(c.Design.EstimatedCycles < c.Design.Program.Sum(i => CycleModel.Fetch(cfg) + 1 + i.Cycles(cfg)), "the units should overlap");
    }

    /// <summary>A final store is labelled by the op that produced the tensor, so an op called "output" cannot be confused with it.</summary>
    [Fact]
    public void Final_stores_belong_to_the_op_that_produced_the_output()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(4, 3, [9, 5], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        var c = Flow.Compile(model, new HwConfig { Scheduler = "greedy" });
        var finals = c.Design.Program.OfType<Store>().Where(s => s.IsFinal).ToList();
        Assert.NotEmpty(finals);
        var last = c.Graph.Ops.OfType<QGemm>().Last();
        Assert.All(finals, s => Assert.Same(last, s.Owner));
        Assert.All(finals, s => Assert.StartsWith(last.Name + ": store", s.Comment));
    }

    /// <summary>The instruction-level run gives the golden outputs on a spilling design with every vector unit, and catches
    /// a program whose addresses are wrong before any simulator runs.</summary>
    [Fact]
    public void The_instruction_level_simulator_runs_the_program_and_catches_a_wrong_one()
    {
        var c = Flow.Compile(Path.Combine(Repo.Root, "examples", "ffn_digits", "model.onnx"),
            new HwConfig { ArrayRows = 2, ArrayCols = 4, ScratchpadBytes = 512, PortBytes = 4, Scheduler = "greedy" }, batch: 3);
        Assert.True(c.Design.Traffic.NonCompulsory > 0, "this scratchpad should force spills");
        var x = Flow.DefaultInputs(c.Graph);
        var (qin, dout, _) = Flow.Golden(c, x);
        var got = InstructionSimulator.Outputs(c.Design, qin);
        Assert.Equal(dout.Select(t => t.Data), got.Select(t => t.Data));

        int at = c.Design.Program.ToList().FindIndex(i => i is Gemm { Last: true });
        var wrong = WithProgram(c.Design, c.Design.Program.Select((i, n) => n == at ? ((Gemm)i) with { OutLine = ((Gemm)i).OutLine + 1 } : i).ToList());
        Assert.Throws<InstructionSimulator.ProgramException>(() => InstructionSimulator.Check(wrong, qin, dout));

        // The simulator executes what the encoding says: a wrong input zero point in one GEMM's word, or a VEC naming
        // another unit, is caught too.
        Design With(Func<Instruction, int, Instruction> change) => WithProgram(c.Design, c.Design.Program.Select(change).ToList());
        int firstGemm = c.Design.Program.ToList().FindIndex(i => i is Gemm { First: true });
        Assert.Throws<InstructionSimulator.ProgramException>(() => InstructionSimulator.Check(
            With((i, n) => n == firstGemm ? ((Gemm)i) with { Layer = ((Gemm)i).Layer with { InputZeroPoint = ((Gemm)i).Layer.InputZeroPoint + 3 } } : i), qin, dout));
        int lastVec = c.Design.Program.ToList().FindLastIndex(i => i is Vec);
        Assert.Throws<InstructionSimulator.ProgramException>(() => InstructionSimulator.Check(
            With((i, n) => n == lastVec ? ((Vec)i) with { UnitIndex = 0 } : i), qin, dout));
    }

    /// <summary>At batch 64 the digits MLP's input fits the activation bank, so its layers run column tiles outside: every
    /// tile's weights and parameters load once, the row blocks' GEMMs keep the parameters in the engine, and the program
    /// still gives the golden outputs. Dropping a kept load is caught by the instruction-level simulator.</summary>
    [Fact]
    public void Column_tiles_go_outside_when_the_activations_fit_and_keep_their_parameters()
    {
        var c = Flow.Compile(Repo.Example("mlp_digits"), new HwConfig { Scheduler = "greedy" }, batch: 64);
        var gemms = c.Design.Program.OfType<Gemm>().ToList();
        foreach (var layer in c.Graph.Ops.OfType<QGemm>())
        {
            var mine = gemms.Where(g => ReferenceEquals(g.Layer, layer)).ToList();
            int tiles = layer.Tiling!.ColTiles;
            Assert.Equal(tiles, mine.Count(g => g.LoadParams));
            Assert.Equal(Enumerable.Range(0, tiles), mine.Select(g => g.ColTile).Distinct());   // tile by tile
            Assert.True(mine.Count(g => g.First) > tiles);
        }
        Assert.Equal(0, c.Design.Traffic.NonCompulsory);
        var (qin, dout, _) = Flow.Golden(c, Flow.DefaultInputs(c.Graph));
        InstructionSimulator.Check(c.Design, qin, dout);
        int second = c.Design.Program.ToList().FindIndex(i => i is Gemm { First: true, LoadParams: false });
        int firstLoad = c.Design.Program.ToList().FindIndex(i => i is Gemm { LoadParams: true });
        var noParams = c.Design.Program.Select((i, n) => n == firstLoad ? ((Gemm)i) with { LoadParams = false } : i).ToList();
        Assert.True(second > firstLoad);
        Assert.Throws<InstructionSimulator.ProgramException>(() => InstructionSimulator.Check(WithProgram(c.Design, noParams), qin, dout));
    }

    /// <summary>The timed schedule of the event model is checked on its own: no unit runs two instructions at once and no
    /// instruction starts while a conflicting one of another unit runs. Moving the first GEMM to cycle 1, before its
    /// operands load, or a unit's instruction onto its predecessor, is reported.</summary>
    [Fact]
    public void The_timed_schedule_check_finds_an_overlap_of_dependent_instructions()
    {
        var d = SpillingFfn().Design;
        var c = d.Config;
        Assert.Null(CycleModel.Violation(d.Program, d.Timings, c));
        var program = d.Program.ToList();
        int gemm = program.FindIndex(i => i is Gemm);
        var early = d.Timings.Select((t, n) => n == gemm ? t with { Start = 1 } : t).ToList();   // before its operands load
        Assert.Contains($"instruction {gemm}", CycleModel.Violation(program, early, c));
        int next = program.FindIndex(gemm + 1, i => i is Gemm);
        var twice = d.Timings.Select((t, n) => n == next ? t with { Start = d.Timings[gemm].Start + 1 } : t).ToList();
        Assert.Contains("unit dense", CycleModel.Violation(program, twice, c));
    }

    static Design WithProgram(Design d, IReadOnlyList<Instruction> program) => new()
    {
        ModelName = d.ModelName, Config = d.Config, Graph = d.Graph, Regions = d.Regions, Storage = d.Storage,
        Costs = d.Costs, Image = d.Image, Schedule = d.Schedule, Tiles = d.Tiles,
        ScratchpadSchedule = d.ScratchpadSchedule, Traffic = d.Traffic, GreedyTraffic = d.GreedyTraffic,
        ScratchpadBytesUsed = d.ScratchpadBytesUsed, EstimatedCycles = d.EstimatedCycles, OffChipBytesMoved = d.OffChipBytesMoved,
        Tokens = d.Tokens, TokenBits = d.TokenBits, Timings = d.Timings, Program = program,
    };

    static Compiled SpillingFfn() => Flow.Compile(Path.Combine(Repo.Root, "examples", "ffn_digits", "model.onnx"),
        new HwConfig { ArrayRows = 2, ArrayCols = 4, ScratchpadBytes = 512, PortBytes = 4, Scheduler = "greedy" }, batch: 3);

    /// <summary>The tokens derived from the scratchpad read and write sets hold every dependency: the decoupled units, run in
    /// many random orders that keep only each unit's program order and the tokens, leave the golden outputs.</summary>
    [Fact]
    public void Decoupled_runs_in_random_orders_give_the_golden_outputs()
    {
        var c = SpillingFfn();
        var d = c.Design;
        var tokens = Tokens.Derive(d.Program, d.Config);
        Tokens.Check(d.Program, tokens, d.Config);
        Assert.Contains(tokens, t => t.WaitFrom.Count > 0);
        var (qin, dout, _) = Flow.Golden(c, Flow.DefaultInputs(c.Graph));
        var image = d.MemoryImage(qin);
        var expected = d.OutputTensors.Select((s, o) => dout[o].Data).ToList();
        for (int seed = 0; seed < 20; seed++)
        {
            var mem = Tokens.RunDecoupled(d, image, tokens, seed);
            Assert.Equal(expected, d.OutputTensors.Select(s => d.ReadTensor(mem, s).Data).ToList());
        }
    }

    /// <summary>Without its tokens the same program goes wrong in some order: the test above can fail.</summary>
    [Fact]
    public void Without_tokens_some_decoupled_order_goes_wrong_and_the_check_says_which_wait_is_missing()
    {
        var c = SpillingFfn();
        var d = c.Design;
        var none = d.Program.Select(_ => new TokenFlags(new HashSet<string>(), new HashSet<string>())).ToList();
        var (qin, dout, _) = Flow.Golden(c, Flow.DefaultInputs(c.Graph));
        var image = d.MemoryImage(qin);
        var expected = d.OutputTensors.Select((s, o) => dout[o].Data).ToList();
        Assert.Contains(Enumerable.Range(0, 20), seed =>
            !expected.SequenceEqual(d.OutputTensors.Select(s => d.ReadTensor(Tokens.RunDecoupled(d, image, none, seed), s).Data).ToList(), new DataComparer()));
        var ex = Assert.Throws<InstructionSimulator.ProgramException>(() => Tokens.Check(d.Program, none, d.Config));
        Assert.Contains("may start before instruction", ex.Message);

        // A signal nobody takes is left over at the end: from the last VEC to the dense engine, which has nothing left to run.
        var tokens = Tokens.Derive(d.Program, d.Config).ToList();
        int j = d.Program.ToList().FindLastIndex(i => i.Unit == "nnlut");
        Assert.True(j > d.Program.ToList().FindLastIndex(i => i.Unit == "dense"));
        tokens[j] = tokens[j] with { SignalTo = new HashSet<string>(tokens[j].SignalTo) { "dense" } };
        Assert.Contains("never taken", Assert.Throws<InstructionSimulator.ProgramException>(() => Tokens.Check(d.Program, tokens, d.Config)).Message);
    }

    sealed class DataComparer : IEqualityComparer<double[]>
    {
        public bool Equals(double[]? a, double[]? b) => a!.SequenceEqual(b!);
        public int GetHashCode(double[] a) => a.Length;
    }
}

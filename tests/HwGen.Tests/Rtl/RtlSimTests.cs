using HwGen.Cli;
using HwGen.Core;
using HwGen.Reference;
using HwGen.Sim;
using HwGen.Tests.Support;

namespace HwGen.Tests.Rtl;

/// <summary>Random layer shapes through the generated RTL: every output element must equal the hardware model's,
/// in both simulators; without stalls the simulated cycles must equal the cycle model's estimate.</summary>
public sealed class RtlSimTests
{
    public static TheoryData<string, int, string, int, QdqStyle, string> Cases => new()
    {
        // name, seed, dims, batch, style, config (rows, cols, scratchpad bytes, port bytes)
        { "exact-fit", 1, "16,8", 4, QdqStyle.GemmRelu, "4,8,4096,8" },
        { "ragged", 2, "13,11,7", 5, QdqStyle.GemmRelu, "4,8,4096,8" },
        { "wide-port", 3, "20,9", 3, QdqStyle.MatMulAdd, "2,4,2048,16" },
        { "narrow-port", 4, "9,17,5", 2, QdqStyle.QLinearMatMul, "3,6,1152,2" },
        { "spills", 5, "40,24,10", 7, QdqStyle.GemmRelu, "4,4,512,4" },
        { "k-chunked", 6, "70,6", 3, QdqStyle.GemmRelu, "2,4,256,4" },
        { "matmulinteger", 7, "15,12,6", 6, QdqStyle.MatMulInteger, "4,8,2048,8" },
    };

    static HwConfig Config(string s)
    {
        var p = s.Split(',').Select(int.Parse).ToArray();
        return new HwConfig { ArrayRows = p[0], ArrayCols = p[1], ScratchpadBytes = p[2], PortBytes = p[3], IlpTimeLimitSeconds = 2 };
    }

    static (Compiled C, TempDir Dir) Build(string name, int seed, string dims, int batch, QdqStyle style, string config)
    {
        var d = dims.Split(',').Select(int.Parse).ToArray();
        var dir = new TempDir();
        var model = QdqModels.Mlp(seed, batch, d, style).Save(dir.File($"{name}.onnx"));
        var c = Flow.Compile(model, Config(config));
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(seed + 100, batch, d[0])], model);
        return (c, dir);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Verilator_is_bit_exact_and_matches_the_cycle_model(string name, int seed, string dims, int batch, QdqStyle style, string config)
    {
        var (c, dir) = Build(name, seed, dims, batch, style, config);
        using var _ = dir;
        // Some of these configs are not ones a user's JSON may give (manifest.json would not read back), so the count comes from the design.
        int elements = Testbench.ElementCount(c.Design);
        var stalled = Simulation.Run(new Verilator(), dir.File("out"), elements);
        Assert.True(stalled.Passed, stalled.Log);
        var ideal = Simulation.Run(new Verilator(), dir.File("out"), elements, noStall: true);
        Assert.True(ideal.Passed, ideal.Log);
        Assert.Equal(c.Design.EstimatedCycles, ideal.Cycles);
        Assert.True(stalled.Cycles > ideal.Cycles, "the stalling memory should cost cycles");
        if (name == "spills") Assert.True(c.Design.Traffic.NonCompulsory > 0, "this scratchpad should force spills");
        if (name == "k-chunked") Assert.Contains(c.Design.Tiles.Tasks.OfType<HwGen.Rtl.Engines.Dense.GemmTask>(), t => !(t.First && t.Last));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Icarus_is_bit_exact(string name, int seed, string dims, int batch, QdqStyle style, string config)
    {
        var (c, dir) = Build(name, seed, dims, batch, style, config);
        using var _ = dir;
        var r = Simulation.Run(new Icarus(), dir.File("out"), Testbench.ElementCount(c.Design), noStall: true);
        Assert.True(r.Passed, r.Log);
        Assert.Equal(c.Design.EstimatedCycles, r.Cycles);
    }

    [Fact]
    public void Both_simulators_count_the_same_cycles_with_the_stalling_memory()
    {
        var (_, dir) = Build("cross", 12, "20,12,6", 5, QdqStyle.GemmRelu, "2,4,512,4");
        using var _ = dir;
        var v = Flow.Simulate(new Verilator(), dir.File("out"));
        var i = Flow.Simulate(new Icarus(), dir.File("out"));
        Assert.True(v.Passed && i.Passed, v.Log + i.Log);
        Assert.Equal(v.Cycles, i.Cycles);
    }

    [Fact]
    public void A_wrong_expected_value_is_reported_as_a_mismatch()
    {
        var (c, dir) = Build("mismatch", 9, "8,8", 2, QdqStyle.GemmRelu, "2,4,1024,8");
        using var _ = dir;
        // Corrupt one expected element: the testbench must fail and name it.
        var path = dir.File("out/tb/expected.hex");
        var lines = File.ReadAllLines(path);
        var v = Convert.ToByte(lines[3][^2..], 16);
        lines[3] = lines[3][..^2] + ((byte)(v ^ 0x5a)).ToString("x2");
        File.WriteAllLines(path, lines);
        var r = Flow.Simulate(new Icarus(), dir.File("out"));
        Assert.False(r.Passed);
        Assert.Equal(1, r.MismatchCount);
        Assert.Equal(3, Assert.Single(r.FirstMismatches).Index);
    }

    [Fact]
    public void Hardware_model_reads_back_what_the_rtl_wrote()
    {
        // The layout functions used to pack inputs and expected outputs are inverse of each other.
        var (c, dir) = Build("layout", 11, "12,6", 5, QdqStyle.GemmRelu, "4,4,1024,4");
        using var _ = dir;
        var x = QdqModels.Input(111, 5, 12);
        var (qin, dout, _) = Flow.Golden(c, [x]);
        var image = c.Design.MemoryImage(qin);
        var inStorage = c.Design.InputTensors.Single();
        Assert.Equal(qin[0].Data, c.Design.ReadTensor(image, inStorage).Data);
        Assert.Equal(DType.Int8, dout[0].Type);
    }
}

using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Program;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.BitMod;
using HwGen.Rtl.Engines.Dense;
using HwGen.Tests.Support;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Engines;

/// <summary>
/// The bit-serial mixture-of-datatype engine (BitMoD): selection by config, quantization of QDQ and QONNX weights, the golden
/// kernel against the dense arithmetic, the RTL bit-exact in Verilator and Icarus in the estimated cycles (every datatype and
/// code, group boundaries inside and across instructions, K not a multiple of the group), and the errors of bad input.
/// </summary>
public sealed class BitModTests
{
    static HwConfig Config(int rows, int cols, string layers, int bits = 4, string format = "mod", int group = 16, int scaleBits = 8) => new()
    {
        ArrayRows = rows, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 8192, Scheduler = "greedy",
        BitmodLayers = layers, BitmodBits = bits, BitmodFormat = format, BitmodGroup = group, BitmodScaleBits = scaleBits,
    };

    static string Model(TempDir dir, int seed, int k, int n, int batch) =>
        QdqModels.Mlp(seed, batch, [k, n, 5], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));

    static QGemm First(Compiled c) => c.Graph.Ops.OfType<QGemm>().First();

    [Fact]
    public void Named_layers_go_to_bitmod_with_their_own_spec_and_the_others_stay()
    {
        using var dir = new TempDir();
        var path = Model(dir, 1, 40, 12, 2);
        var names = Flow.Compile(path, HwConfig.Default).Graph.Ops.OfType<QGemm>().Select(g => g.Name).ToList();
        var c = Flow.Compile(path, Config(4, 8, $"{names[0]}=mod3/8"));
        var layers = c.Graph.Ops.OfType<QGemm>().ToList();
        Assert.Equal([BitModEngine.Id, DenseEngine.Id], layers.Select(g => g.Engine));
        var gr = layers[0].Groups!;
        Assert.Equal((3, 8, 8), (gr.Bits, gr.Size, gr.ScaleBits));
        Assert.Equal(5 * 12, gr.Types.Count);
        Assert.All(gr.Types, t => Assert.InRange(t, ModType.ErPlus, ModType.EaMinus));
        Assert.Contains(c.Design.Program, i => i is BitMod);
        var report = Report.Markdown(c);
        Assert.Contains("mixture-of-datatype", report);
        Assert.Contains("fp3-", report);
        var all = Flow.Compile(path, Config(4, 8, "*", format: "int"));
        Assert.All(all.Graph.Ops.OfType<QGemm>(), g => Assert.Equal(BitModEngine.Id, g.Engine));
        Assert.All(First(all).Groups!.Types, t => Assert.Equal(ModType.Int, t));
    }

    /// <summary>QONNX 4-bit signed weights on <c>int4</c> keep their codes, multipliers and bias: the same integers as on the dense
    /// engine, so QONNX's semantics bit for bit.</summary>
    [Fact]
    public void Qonnx_int4_weights_run_unchanged()
    {
        using var dir = new TempDir();
        var path = QonnxModels.Layer(3, 2, 20, 6, new QonnxLayer(WeightBits: 4)).Save(dir.File("q.onnx"));
        var dense = First(Flow.Compile(path, HwConfig.Default));
        var c = Flow.Compile(path, Config(4, 8, "*", format: "int", group: 8));
        var g = First(c);
        Assert.Equal(BitModEngine.Id, g.Engine);
        Assert.Equal(dense.Weights, g.Weights);
        Assert.Equal(dense.Bias, g.Bias);
        Assert.Equal(dense.Multiplier, g.Multiplier);
        Assert.All(g.Groups!.Scales, s => Assert.Equal(1, s));
        Assert.Equal(0, g.Groups.RelativeMse);
        var x = new Tensor(DType.Int8, [3, 20], Enumerable.Range(0, 60).Select(i => (double)(i * 37 % 256 - 128)).ToArray());
        Assert.Equal(DenseEngine.Kernel(dense, x).Data, BitModEngine.Kernel(g, x).Data);
    }

    /// <summary>The IR with weight groups prints and parses back exactly, and the parsed graph computes the same outputs.</summary>
    [Fact]
    public void Weight_groups_print_and_parse_back()
    {
        using var dir = new TempDir();
        var path = QonnxModels.Layer(5, 2, 20, 6, new QonnxLayer(WeightBits: 4)).Save(dir.File("q.onnx"));
        var c = Flow.Compile(path, Config(4, 8, "*", 3, "mod", 8));
        var text = Printer.Print(c.Graph);
        Assert.Contains("group_types", text);
        Assert.Contains("qonnx_bits", text);
        var back = HwGen.Core.Ir.Text.Parser.ParseOne(text);
        Assert.Equal(text, Printer.Print(back));
        var x = Flow.DefaultInputs(c.Graph);
        Assert.Equal(HardwareModel.Outputs(c.Graph, x)[0].Data, HardwareModel.Outputs(back, x)[0].Data);
    }

    /// <summary>A float weight initializer (a QDQ model whose weights were left in float): per-channel int8 on the dense engine, and
    /// requantized from there by BitMoD; the RTL is bit-exact.</summary>
    [Fact]
    public void Float_weights_are_taken_and_requantized()
    {
        using var dir = new TempDir();
        int k = 24, n = 6;
        var rng = new Random(2);
        var b = new OnnxBuilder();
        b.Input("x", DType.Float32, 2, k);
        var x = QdqModels.Dq(b, QdqModels.Q(b, "x", 1 / 127.0, 0, DType.Int8, "in"), 1 / 127.0, 0, DType.Int8, "in");
        var w = b.Init("w", DType.Float32, [k, n], Enumerable.Range(0, k * n).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray());
        var y = b.Node("MatMul", [x, w], "fc");
        var o = QdqModels.Dq(b, QdqModels.Q(b, y, k / 64.0, 0, DType.Int8, "out"), k / 64.0, 0, DType.Int8, "out");
        b.Output(o, DType.Float32, 2, n);
        var path = b.Save(dir.File("f.onnx"));
        var dense = First(Flow.Compile(path, HwConfig.Default));
        Assert.Equal(DenseEngine.Id, dense.Engine);
        Assert.Equal(127, Enumerable.Range(0, n).Select(j => Enumerable.Range(0, k).Max(i => Math.Abs(dense.Weights[i * n + j]))).Min());
        var c = Flow.Compile(path, Config(4, 8, "*", 4, "mod", 8));
        Assert.Equal(BitModEngine.Id, First(c).Engine);
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(5, 2, k)], path);
        RtlCheck.BitExactInEstimatedCycles("verilator", dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>The kernel equals the dense arithmetic on the effective weights value · group scale, with K not a multiple of G.</summary>
    [Theory]
    [InlineData(3, "mod", 4, 22)]
    [InlineData(4, "mod", 8, 37)]
    [InlineData(4, "int", 16, 40)]
    public void The_kernel_is_the_dense_arithmetic_on_value_times_group_scale(int bits, string format, int group, int k)
    {
        using var dir = new TempDir();
        var g = First(Flow.Compile(Model(dir, 4, k, 7, 3), Config(4, 8, "*", bits, format, group)));
        var gr = g.Groups!;
        var effective = g with { Weights = g.Weights.Select((v, i) => v * gr.Scales[i / g.N / gr.Size * g.N + i % g.N]).ToArray() };
        var rng = new Random(9);
        var x = new Tensor(DType.Int8, [4, k], Enumerable.Range(0, 4 * k).Select(i => (double)(i < k ? 127 : i < 2 * k ? -128 : rng.Next(-128, 128))).ToArray());
        Assert.Equal(DenseEngine.Kernel(effective, x).Data, BitModEngine.Kernel(g, x).Data);
        Assert.True(gr.RelativeMse is > 0 and < 0.1, $"{gr.RelativeMse}");
    }

    /// <summary>Random QDQ MLPs quantized by the compiler: bit-exact, in the estimated cycles without stalls, and with them.</summary>
    [Theory]
    [InlineData("verilator", 4, "mod", 4, 8, 16, 40, 9, 1)]
    [InlineData("verilator", 3, "mod", 4, 8, 8, 29, 10, 3)]
    [InlineData("verilator", 4, "int", 2, 4, 6, 21, 5, 2)]
    [InlineData("verilator", 3, "mod", 1, 2, 2, 7, 3, 2)]
    [InlineData("verilator", 4, "mod", 4, 8, 32, 70, 8, 5)]
    [InlineData("icarus", 4, "mod", 2, 4, 4, 13, 5, 2)]
    public void The_rtl_is_bit_exact_in_the_estimated_cycles(string simulator, int bits, string format, int rows, int cols, int group, int k, int n, int batch)
    {
        using var dir = new TempDir();
        var path = Model(dir, k * 10 + n, k, n, batch);
        var c = Flow.Compile(path, Config(rows, cols, "*", bits, format, group, scaleBits: Math.Min(8, 8 * rows - 3)));
        Assert.Equal(BitModEngine.Id, First(c).Engine);
        Flow.WriteDesignDirectory(c, dir.File("out"), [QdqModels.Input(k, batch, k)], path);
        Assert.True(File.Exists(dir.File("out/rtl/hwgen_bitmod_pe.v")));
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>Every datatype (INT and the four FP variants, 3 and 4 bits) and every code, the special values included, in one
    /// design: the first layer's groups cycle through the datatypes and its weights through each datatype's values, with group
    /// scales from 1 to 2^ScaleBits - 1; groups of 4 inputs, so boundaries fall inside instructions, and K = 30.</summary>
    [Theory]
    [InlineData("verilator", 4)]
    [InlineData("verilator", 3)]
    [InlineData("icarus", 4)]
    public void Every_datatype_and_code_is_bit_exact(string simulator, int bits)
    {
        using var dir = new TempDir();
        int k = 30, n = 10, batch = 2, scaleBits = 4;
        var path = Model(dir, 7, k, n, batch);
        var cfg = Config(4, 8, "*", bits, "mod", 4, scaleBits);
        var c = Flow.Compile(path, cfg);
        var g = First(c);
        int groups = (k + 3) / 4;
        var types = new int[groups * n];
        var scales = new int[groups * n];
        var values = new int[k * n];
        for (int q = 0; q < groups; q++)
            for (int j = 0; j < n; j++)
            {
                types[q * n + j] = (q + j) % 5;
                scales[q * n + j] = 1 + (q * 7 + j * 3) % ((1 << scaleBits) - 1);
            }
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++)
            {
                var t = ModType.Of(bits, types[i / 4 * n + j]);
                values[i * n + j] = t.Values[(i + j) % t.Values.Count];
            }
        var crafted = g with { Weights = values, Groups = g.Groups! with { Types = types, Scales = scales } };
        c.Graph.Replace(g, crafted);
        var design = DesignBuilder.Build(c.Graph, cfg, "m");
        var built = new Compiled(path, c.Graph, design, null);
        // Every (datatype, code) pair appears.
        var seen = Enumerable.Range(0, k * n).Select(i => (types[i / n / 4 * n + i % n], ModType.Of(bits, types[i / n / 4 * n + i % n]).Encode(values[i]))).ToHashSet();
        Assert.Equal(5 << bits, seen.Count);
        Flow.WriteDesignDirectory(built, dir.File("out"), [QdqModels.Input(3, batch, k)], path);
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), design.EstimatedCycles);
    }

    /// <summary>The cycle model: a group end waits for the row's dequantizer (scaleBits cycles after the previous one). Groups of
    /// 2 code lines on one row leave 5 issues between group ends: with 5-bit scales each group after the first stalls a cycle,
    /// with 4-bit ones, or on a block of two rows (9 issues), none does.</summary>
    [Theory]
    [InlineData(1, 5, 3)]
    [InlineData(1, 4, 0)]
    [InlineData(2, 5, 0)]
    public void Short_groups_stall_until_the_row_dequantizer_is_free(int rows, int scaleBits, int stalls)
    {
        using var dir = new TempDir();
        var cfg = Config(rows, 2 * rows, "*", 3, "mod", 2 * rows, scaleBits);
        var layer = First(Flow.Compile(Model(dir, 1, 16, 3, 2), cfg));
        var bmm = new BitMod(new Gemm(layer, 0, 0, 0) { Lines = 8, Rows = rows, Cols = 2 }, layer.Groups!, rows);
        Assert.Equal((4, 0, 2), (bmm.Headers, bmm.GroupPos, bmm.GroupLines));
        long issues = 1 + 4 + 2L * 8 * rows;   // a taken cycle, 4 headers, two terms per code line and row
        Assert.Equal(issues + stalls, new BitModTimer(cfg).Take(bmm, 0).Retire);
    }

    /// <summary>Off chip a 4-bit layer's weight line is half the dense one's, plus a header line per group.</summary>
    [Fact]
    public void The_dma_moves_the_packed_weights()
    {
        using var dir = new TempDir();
        var path = Model(dir, 2, 64, 16, 1);
        var cfg = HwConfig.Default with { Scheduler = "greedy" };
        var names = Flow.Compile(path, cfg).Graph.Ops.OfType<QGemm>().Select(g => g.Name).ToList();
        var dense = Flow.Compile(path, cfg);
        var bitmod = Flow.Compile(path, cfg with { BitmodLayers = names[0], BitmodGroup = 32 });
        long dBytes = new DenseLayout(First(dense), cfg).WeightBytes;
        long bBytes = BitModEngine.Layout(First(bitmod), cfg).WeightBytes;
        // 2 column tiles x (16 code lines of 16 bytes + 2 headers of 11 bytes in 16-byte slots) against 16 lines of 32 bytes.
        Assert.Equal(2 * 16 * 32, dBytes);
        Assert.Equal(2 * (16 + 2) * 16, bBytes);
        Assert.True(bitmod.Design.CostOf(First(bitmod)).OffChipBytes < dense.Design.CostOf(First(dense)).OffChipBytes);
    }

    /// <summary>`hwgen bench bitmod --quick`: MoD's squared error is below INT's of the same bits on Gaussian and Laplacian weights,
    /// and the digits MLP on MoD-4 stays within 3 points of int8, with fewer off-chip bytes and cycles at batch 1.</summary>
    [Fact]
    public void The_quick_benchmark_shows_mod_below_int()
    {
        var (errors, models) = BitModBench.Run(Path.Combine(Repo.Root, "examples"), quick: true, TextWriter.Null);
        foreach (var source in new[] { "Gaussian", "Laplacian" })
            foreach (int bits in new[] { 3, 4 })
            {
                double Mse(string spec) => errors.Single(e => e.Source.StartsWith(source) && e.Spec == spec).RelativeMse;
                Assert.True(Mse($"MoD-{bits}") < Mse($"INT{bits}"), $"{source} {bits} bits");
            }
        var int8 = models.Single(m => m.Name.StartsWith("int8"));
        var mod4 = models.Single(m => m.Name == "MoD-4");
        Assert.True(mod4.Accuracy >= int8.Accuracy - 0.03, $"MoD-4 {mod4.Accuracy}, int8 {int8.Accuracy}");
        Assert.True(mod4.OffChipBytes < int8.OffChipBytes && mod4.Cycles < int8.Cycles);
        Assert.Contains("| MoD-4 |", BitModBench.Markdown((errors, models)));
    }

    static string WriteConfig(TempDir dir, string json)
    {
        File.WriteAllText(dir.File("hw.json"), json);
        return dir.File("hw.json");
    }

    [Theory]
    [InlineData("""{ "bitmodLayers": "*", "bitmodFormat": "fp5" }""", "unknown BitMoD datatype format 'fp5'")]
    [InlineData("""{ "bitmodLayers": "*=nf4" }""", "unknown BitMoD datatype format 'nf'")]
    [InlineData("""{ "bitmodLayers": "*", "bitmodBits": 5 }""", "3 or 4 bits, not 5")]
    [InlineData("""{ "bitmodLayers": "*=mod2" }""", "3 or 4 bits, not 2")]
    [InlineData("""{ "bitmodLayers": "*", "bitmodGroup": 6 }""", "group size 6 does not fit")]
    [InlineData("""{ "bitmodLayers": "*=mod4/2000" }""", "group size 2000 does not fit")]
    [InlineData("""{ "bitmodLayers": "*=mod4/x" }""", "is not FORMAT[BITS][/GROUP]")]
    [InlineData("""{ "bitmodLayers": "*=mod99999999999" }""", "is not FORMAT[BITS][/GROUP]")]
    public void Bad_bitmod_config_is_one_error_naming_the_layer(string json, string why)
    {
        using var dir = new TempDir();
        var path = Model(dir, 3, 8, 4, 1);
        var layer = First(Flow.Compile(path, HwConfig.Default));
        CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, json)], $"layer '{layer.Name}'", why);
    }

    [Fact]
    public void A_qonnx_weight_wider_than_4_bits_forced_onto_bitmod_is_one_error_naming_the_layer()
    {
        using var dir = new TempDir();
        var path = QonnxModels.Layer(3, 2, 10, 6, new QonnxLayer(WeightBits: 6)).Save(dir.File("q.onnx"));
        var layer = First(Flow.Compile(path, HwConfig.Default));
        CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, $$"""{ "bitmodLayers": "{{layer.Name}}" }""")],
            $"layer '{layer.Name}'", "6 bits", "at most 4 bits");
    }

    [Fact]
    public void A_bitmod_layer_name_that_is_no_layer_is_one_error_listing_the_layers()
    {
        using var dir = new TempDir();
        var path = Model(dir, 3, 8, 4, 1);
        var layer = First(Flow.Compile(path, HwConfig.Default));
        CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, """{ "bitmodLayers": "fc9=mod3" }""")],
            "bitmodLayers names 'fc9', which is no layer of the model", $"'{layer.Name}'");
    }
}

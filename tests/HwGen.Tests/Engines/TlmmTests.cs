using HwGen.Cli;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Engines.Tlmm;
using HwGen.Tests.Support;
using Tensor = HwGen.Core.Tensor;

namespace HwGen.Tests.Engines;

/// <summary>
/// The table-lookup ternary engine: recognition of ternary weights (QDQ per channel and per tensor, QOperator, QONNX 2-bit
/// signed narrow), the packed codes, the golden kernel against the dense engine's arithmetic, the RTL bit-exact in Verilator
/// and Icarus in the estimated cycles, no DSPs in its lookup datapath, and the errors of bad input.
/// </summary>
public sealed class TlmmTests
{
    static HwConfig Config(int rows, int cols, int g) => new() { ArrayRows = rows, ArrayCols = cols, PortBytes = 4, ScratchpadBytes = 8192, TlmmGroup = g };

    /// <summary>A two-layer MLP: a ternary layer of K inputs and N outputs, then an int8 layer of 5 outputs.</summary>
    static string Model(TempDir dir, int seed, int k, int n, int batch, QdqStyle style) =>
        QdqModels.Mlp(seed, batch, [k, n, 5], style, ternary: [true, false]).Save(dir.File("m.onnx"));

    /// <summary>Random inputs, the first row at the top of the input range (code 127), the second at the bottom (-128).</summary>
    static Tensor Input(int seed, int batch, int k)
    {
        var x = QdqModels.Input(seed, batch, k);
        var d = x.Data.ToArray();
        for (int i = 0; i < k; i++)
        {
            d[i] = 8;
            if (batch > 1) d[k + i] = -8;
        }
        return new Tensor(DType.Float32, x.Shape, d);
    }

    [Theory]
    [InlineData(QdqStyle.GemmRelu)]
    [InlineData(QdqStyle.MatMulAdd)]
    [InlineData(QdqStyle.QLinearMatMul)]
    [InlineData(QdqStyle.MatMulInteger)]
    public void Ternary_layers_go_to_tlmm_and_the_others_to_the_dense_engine(QdqStyle style)
    {
        using var dir = new TempDir();
        var c = Flow.Compile(Model(dir, 1, 12, 6, 2, style), HwConfig.Default);
        var layers = c.Graph.Ops.OfType<QGemm>().ToList();
        Assert.Equal([TlmmEngine.Id, DenseEngine.Id], layers.Select(g => g.Engine));
        Assert.Equal(2, layers[0].TableGroup);
        // The ternary layer holds its weights in two bits each, the int8 layer in a byte each.
        Assert.IsType<TernaryValues>(layers[0].Weights);
        Assert.IsType<Int8Values>(layers[1].Weights);
        Assert.Contains(c.Design.Program, i => i is Tlmm);
        // The report says which engine each layer got, and why: the int8 layer names its first weight TLMM cannot take.
        var first = TlmmEngine.FirstNonTernary(layers[1])!.Value;
        var report = Report.Markdown(c);
        Assert.Contains($"| {layers[0].Name} | tlmm | weights in {{-1, 0, 1}} |", report);
        Assert.Matches($@"\| {layers[1].Name} \| dense \|[^\n]*\| not ternary for TLMM: W\[{first.K}, {first.N}\] = {first.Value} \|", report);
        var off = Flow.Compile(Model(dir, 1, 12, 6, 2, style), HwConfig.Default with { TlmmGroup = 0 });
        Assert.All(off.Graph.Ops.OfType<QGemm>(), g => Assert.Equal(DenseEngine.Id, g.Engine));
        Assert.Contains("| TLMM off (tlmmGroup 0) |", Report.Markdown(off));
    }

    [Fact]
    public void Qonnx_two_bit_signed_narrow_weights_go_to_tlmm_and_four_bit_ones_do_not()
    {
        using var dir = new TempDir();
        var two = QonnxModels.Layer(3, 2, 10, 6, new QonnxLayer(WeightBits: 2)).Save(dir.File("two.onnx"));
        Assert.Equal(TlmmEngine.Id, Flow.Compile(two, HwConfig.Default).Graph.Ops.OfType<QGemm>().Single().Engine);
        var four = QonnxModels.Layer(3, 2, 10, 6, new QonnxLayer(WeightBits: 4)).Save(dir.File("four.onnx"));
        Assert.Equal(DenseEngine.Id, Flow.Compile(four, HwConfig.Default).Graph.Ops.OfType<QGemm>().Single().Engine);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Every_pattern_packs_and_unpacks(int g)
    {
        var codes = new HashSet<int>();
        var entries = new HashSet<int>();
        foreach (var w in Patterns(g))
        {
            int code = TlmmCodes.Encode(g, w);
            Assert.InRange(code, 0, (1 << TlmmCodes.CodeBits(g)) - 1);
            Assert.Equal(w, TlmmCodes.Decode(g, code));
            Assert.True(codes.Add(code));
            var (e, negate) = TlmmCodes.Lookup(g, code);
            Assert.InRange(e, 0, TlmmCodes.Entries(g) - 1);
            entries.Add(e);
            // The entry's pattern, negated when the code says so, is the weights.
            Assert.Equal(w, TlmmCodes.Pattern(g, e).Select(v => negate ? -v : v));
        }
        Assert.Equal(g == 2 ? 9 : 27, codes.Count);
        Assert.Equal(TlmmCodes.Entries(g), entries.Count);
        Assert.Equal(g == 2 ? 4 : 5, TlmmCodes.CodeBits(g));
    }

    static IEnumerable<int[]> Patterns(int g) =>
        Enumerable.Range(0, g == 2 ? 9 : 27).Select(i => Enumerable.Range(0, g).Select(j => i / (int)Math.Pow(3, g - 1 - j) % 3 - 1).ToArray());

    /// <summary>A line packs per column ⌈rows / G⌉ codes; 3 columns of 4 inputs at G = 3: 2 codes each, 30 bits.</summary>
    [Fact]
    public void A_line_packs_its_codes_column_by_column_and_reads_back()
    {
        int rows = 4, g = 3, n = 3;
        var rng = new Random(5);
        var w = Enumerable.Range(0, rows * n).Select(_ => rng.Next(-1, 2)).ToArray();
        var line = new byte[TlmmCodes.LineBytes(n, rows, g)];
        Assert.Equal(4, line.Length);
        TlmmCodes.WriteLine(line, w, n, g, rows, 0, rows, 0, n);
        for (int k = 0; k < rows; k++)
            for (int c = 0; c < n; c++)
                Assert.Equal(w[k * n + c], TlmmCodes.WeightOf(line, c, k, rows, g));
        Assert.Equal(0, line[3] >> 6);
    }

    /// <summary>The table-lookup kernel gives the dense engine's integers, before tiling (groups over the whole K) and after it
    /// (groups within lines), on inputs at both ends of int8 and with all-zero groups.</summary>
    [Theory]
    [InlineData(2, 11)]
    [InlineData(3, 10)]
    [InlineData(3, 13)]
    public void The_table_kernel_equals_the_dense_kernel(int g, int k)
    {
        using var dir = new TempDir();
        var c = Flow.Compile(Model(dir, 4, k, 7, 6, QdqStyle.GemmRelu), Config(4, 8, g));
        var gemm = c.Graph.Ops.OfType<QGemm>().First();
        Assert.Equal(TlmmEngine.Id, gemm.Engine);
        var rng = new Random(9);
        var x = new Tensor(DType.Int8, [6, k], Enumerable.Range(0, 6 * k).Select(i => (double)(i < k ? 127 : i < 2 * k ? -128 : rng.Next(-128, 128))).ToArray());
        var dense = DenseEngine.Kernel(gemm, x);
        Assert.Equal(dense.Data, TlmmEngine.Kernel(gemm, x).Data);
        Assert.Equal(dense.Data, TlmmEngine.Kernel(gemm with { Tiling = null }, x).Data);
        Assert.True(dense.Data.Distinct().Count() > 5);
    }

    [Theory]
    [InlineData("verilator", 2, 4, 8, 11, 9, 3, QdqStyle.GemmRelu)]
    [InlineData("verilator", 3, 3, 6, 10, 7, 5, QdqStyle.MatMulAdd)]
    [InlineData("verilator", 3, 2, 4, 13, 5, 1, QdqStyle.GemmRelu)]
    [InlineData("verilator", 2, 1, 2, 7, 3, 2, QdqStyle.QLinearMatMul)]
    [InlineData("icarus", 3, 2, 4, 7, 5, 2, QdqStyle.GemmRelu)]
    [InlineData("icarus", 2, 4, 8, 9, 6, 1, QdqStyle.MatMulAdd)]
    public void The_rtl_is_bit_exact_in_the_estimated_cycles(string simulator, int g, int rows, int cols, int k, int n, int batch, QdqStyle style)
    {
        using var dir = new TempDir();
        var path = Model(dir, k * 10 + n, k, n, batch, style);
        var c = Flow.Compile(path, Config(rows, cols, g));
        Assert.Equal(TlmmEngine.Id, c.Graph.Ops.OfType<QGemm>().First().Engine);
        Flow.WriteDesignDirectory(c, dir.File("out"), [Input(k, batch, k)], path);
        Assert.True(File.Exists(dir.File("out/rtl/hwgen_tlmm_lookup.v")));
        if (simulator == "verilator") RtlCheck.LintClean(dir.File("out"));
        RtlCheck.BitExactInEstimatedCycles(simulator, dir.File("out"), c.Design.EstimatedCycles);
    }

    /// <summary>Off chip, a weight line of the ternary layer is its packed codes: at 4x8, G = 2, 8 bytes (one beat of 8) instead of
    /// the dense engine's 32.</summary>
    [Fact]
    public void The_dma_moves_the_packed_weights()
    {
        using var dir = new TempDir();
        var path = Model(dir, 2, 64, 16, 1, QdqStyle.GemmRelu);
        var cfg = HwConfig.Default;
        var tlmm = Flow.Compile(path, cfg);
        var dense = Flow.Compile(path, cfg with { TlmmGroup = 0 });
        QGemm Ternary(Compiled x) => x.Graph.Ops.OfType<QGemm>().First();
        long tBytes = tlmm.Design.CostOf(Ternary(tlmm)).OffChipBytes, dBytes = dense.Design.CostOf(Ternary(dense)).OffChipBytes;
        // 2 column tiles x 16 weight lines x 8 bytes, and the same parameters and activations.
        Assert.Equal(dBytes - 2 * 16 * (32 - 8), tBytes);
        Assert.Equal(8, TlmmCodes.LineBytes(8, 4, 2));
        Assert.True(tlmm.Design.CostOf(Ternary(tlmm)).Cycles < dense.Design.CostOf(Ternary(dense)).Cycles);
        var report = Report.Markdown(tlmm);
        Assert.Contains("table-lookup", report);
    }

    /// <summary>yosys synth_xilinx: the lookup datapath (tables, lookup, negate, column sums) infers no DSP, where the dense
    /// engine's MAC trees of the same array do.</summary>
    [Fact]
    public void The_lookup_datapath_infers_no_dsp()
    {
        using var dir = new TempDir();
        var path = Model(dir, 2, 12, 6, 1, QdqStyle.GemmRelu);
        var c = Flow.Compile(path, Config(2, 4, 3));
        Flow.WriteDesignDirectory(c, dir.File("out"), [Input(1, 1, 12)], path);
        int Dsp(string module)
        {
            var (exit, output) = Tool.Run("yosys", $"-q -p \"read_verilog rtl/{module}.v; synth_xilinx -top {module}; tee -o {module}.txt stat\"", dir.File("out"));
            Assert.True(exit == 0, output);
            var stat = File.ReadAllText(dir.File($"out/{module}.txt"));
            Assert.Contains("Number of cells", stat);
            return stat.Split('\n').Where(l => l.Contains("DSP48E1")).Select(l => int.Parse(l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1])).Sum();
        }
        Assert.Equal(0, Dsp(TlmmEngine.LookupModule));
        Assert.True(Dsp(DenseEngine.MacsModule) > 0);
    }

    /// <summary>`hwgen bench tlmm --quick`: at batch 1, TLMM takes at most a third of the dense engine's cycles on the same
    /// ternary MLP, and moves a quarter of its weight bytes.</summary>
    [Fact]
    public void The_quick_benchmark_meets_the_batch_1_target()
    {
        var r = Assert.Single(TlmmBench.Run(quick: true, TextWriter.Null));
        var b1 = r.Speeds.Single(s => s.Batch == 1);
        Assert.True(3 * b1.TlmmCycles <= b1.DenseCycles, $"TLMM {b1.TlmmCycles} cycles, dense {b1.DenseCycles}");
        Assert.Equal(0.25, r.TlmmBytesPerWeight);
        Assert.Equal(1.0, r.DenseBytesPerWeight);
        Assert.Contains("| 4x8, G = 2 | 64 |", TlmmBench.Markdown([r]));
    }

    static string WriteConfig(TempDir dir, string json)
    {
        File.WriteAllText(dir.File("hw.json"), json);
        return dir.File("hw.json");
    }

    [Fact]
    public void A_layer_forced_onto_tlmm_with_int8_weights_is_one_error_naming_it_and_the_value()
    {
        using var dir = new TempDir();
        var path = QdqModels.Mlp(3, 2, [6, 4], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        var layer = Flow.Compile(path, HwConfig.Default).Graph.Ops.OfType<QGemm>().Single();
        // The first weight outside {-1, 0, 1} in W[k, n] order, and where it lies.
        int at = Enumerable.Range(0, layer.Weights.Count).First(i => layer.Weights[i] is < -1 or > 1);
        Assert.True(layer.Weights.Take(at).All(w => w is >= -1 and <= 1));
        CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, $$"""{ "tlmmLayers": "{{layer.Name}}" }""")],
            $"layer '{layer.Name}'", "not ternary", $"W[{at / layer.N}, {at % layer.N}] = {layer.Weights[at]}");
    }

    [Fact]
    public void A_tlmm_layers_name_that_is_no_layer_is_one_error_naming_it_and_the_layers()
    {
        using var dir = new TempDir();
        var path = Model(dir, 3, 8, 4, 1, QdqStyle.GemmRelu);
        var names = Flow.Compile(path, HwConfig.Default).Graph.Ops.OfType<QGemm>().Select(g => g.Name).ToList();
        Assert.Equal(2, names.Count);
        var error = CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, $$"""{ "tlmmLayers": "{{names[0]}}, fc_typo" }""")],
            "tlmmLayers", "'fc_typo'", "no layer");
        Assert.All(names, n => Assert.Contains($"'{n}'", error));
    }

    /// <summary>A line makes ⌈ArrayRows / G⌉ tables, one per group: their count grows with the array and has no bound of its own,
    /// but each table must fit the lookup's 16 slots per group (a 4-bit entry index). Both supported G fit on the largest array
    /// (64x64); a G whose tables do not (4: 41 entries) is refused with the reason.</summary>
    [Fact]
    public void Every_supported_group_size_fits_the_lookup_tables_and_a_larger_one_would_not()
    {
        Assert.Null(TlmmEngine.TableProblem(2));
        Assert.Null(TlmmEngine.TableProblem(3));
        Assert.Contains("41 entries per group, and the lookup holds 16", TlmmEngine.TableProblem(4));
        foreach (int g in new[] { 2, 3 })
        {
            var v = TlmmEngine.LookupValues(new HwConfig { ArrayRows = 64, ArrayCols = 64, TlmmGroup = g });
            Assert.Equal(TlmmCodes.GroupsPerLine(64, g) * TlmmEngine.SlotsPerGroup, v.Entries.Count);
            Assert.True(v.UsedBits <= 64 * 64 * 8, "the codes fit a weight line");
        }
    }

    [Fact]
    public void A_group_size_tlmm_does_not_support_is_one_error_naming_the_layer()
    {
        using var dir = new TempDir();
        var path = Model(dir, 3, 8, 4, 1, QdqStyle.GemmRelu);
        var layer = Flow.Compile(path, HwConfig.Default).Graph.Ops.OfType<QGemm>().First();
        CleanFailure.Assert(dir, ["compile", path, "--config", WriteConfig(dir, """{ "tlmmGroup": 4 }""")],
            $"layer '{layer.Name}'", "groups of 2 or 3", "tlmmGroup = 4");
    }
}

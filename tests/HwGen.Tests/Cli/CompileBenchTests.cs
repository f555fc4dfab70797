using HwGen.Cli;
using HwGen.Core;

namespace HwGen.Tests.Cli;

public class CompileBenchTests
{
    [Theory]
    [InlineData("100M", 100_000_000)]
    [InlineData("1.5B", 1_500_000_000)]
    [InlineData("64k", 64_000)]
    [InlineData("4096", 4096)]
    public void Parameter_counts_take_K_M_and_B_suffixes(string text, long want) => Assert.Equal(want, CompileBench.ParseCount(text));

    [Theory]
    [InlineData("")]
    [InlineData("M")]
    [InlineData("-3M")]
    [InlineData("12X")]
    public void A_malformed_count_is_one_error_naming_it(string text) =>
        Assert.Contains($"'{text}'", Assert.Throws<HwGenException>(() => CompileBench.ParseCount(text)).Message);

    /// <summary>Square layers of the widest power of two whose square fits, at most 4096 (2^24 weights, the tensor limit).</summary>
    [Theory]
    [InlineData(1_000_000, 512, 4)]
    [InlineData(16_000_000, 2048, 4)]
    [InlineData(64_000_000, 4096, 4)]
    [InlineData(100_000_000, 4096, 6)]
    [InlineData(1_000_000_000, 4096, 60)]
    public void Sizes_map_to_layers_of_at_most_4096_features(long parameters, int width, int layers) =>
        Assert.Equal((width, layers), CompileBench.Shape(parameters));

    [Fact]
    public void The_ladder_stops_at_the_maximum_and_includes_it() =>
        Assert.Equal([1_000_000, 4_000_000, 16_000_000, 20_000_000], CompileBench.Sizes(20_000_000));

    /// <summary>A small size in this process, with its weights inline or as external data: every phase is reported with its
    /// time and a peak, and the row's figures are the compiled design's.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Bench_compile_reports_every_phase_of_a_small_model(bool external)
    {
        var (exit, stdout, err) = CliRunner.Run(["bench", "compile", "--sizes", "70K", "--in-process", .. external ? new[] { "--external-data" } : []]);
        Assert.True(exit == 0, err);
        Assert.Contains(external ? "weights as ONNX external data" : "weights inline", stdout);
        var row = stdout.Split('\n').Single(l => l.StartsWith("| 0.07M | 1 x 256² |"));
        var cells = row.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.True(int.Parse(cells[2]) > 0 && int.Parse(cells[3]) > 0, row);  // tasks, instructions
        Assert.True(double.Parse(cells[5], System.Globalization.CultureInfo.InvariantCulture) > 0, row);  // processor time
        Assert.True(double.Parse(cells[6]) > 0, row);                            // peak RSS
        foreach (var table in new[] { "Wall time per phase, s:", "Processor time per phase", "Peak RSS per phase, MB:" })
        {
            var lines = stdout[stdout.IndexOf(table)..].Split('\n');
            Assert.Equal("| params | " + string.Join(" | ", CompileBench.Phases) + " |", lines[2]);
            var values = lines[4].Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(CompileBench.Phases.Length + 1, values.Length);
            Assert.All(values[1..], v => Assert.True(double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) >= 0));
        }
    }

    /// <summary>The synthetic model of each kind compiles as the CLI compiles any model, on the engine its weights call for,
    /// and its golden outputs are not all saturated or all zero (the scales keep the codes in range).</summary>
    [Theory]
    [InlineData("int8")]
    [InlineData("ternary")]
    [InlineData("int4")]
    public void The_synthetic_mlp_compiles_and_uses_its_output_range(string kind)
    {
        using var dir = new Support.TempDir();
        var path = dir.File("model.onnx");
        using (var f = File.Create(path)) Google.Protobuf.MessageExtensions.WriteTo(CompileBench.Mlp(64, 3, kind: kind), f);
        var c = Flow.Compile(path, HwConfig.Default with { Scheduler = "greedy" });
        var gemms = c.Graph.Ops.OfType<HwGen.Core.Ir.QGemm>().ToList();
        Assert.Equal(3, gemms.Count);
        var (lo, hi) = kind switch { "ternary" => (-1, 1), "int4" => (-8, 7), _ => (-128, 127) };
        Assert.All(gemms, g => Assert.True(g.Weights.Min() == lo && g.Weights.Max() == hi, $"{kind}: weights in [{g.Weights.Min()}, {g.Weights.Max()}]"));
        Assert.All(gemms, g => Assert.Equal(kind == "ternary", g.TableGroup > 0));   // ternary layers go to the TLMM engine
        Assert.All(gemms, g => Assert.Equal(kind == "int4" ? 4 : 0, g.QonnxBits));
        var (_, dout, _) = Flow.Golden(c, Flow.DefaultInputs(c.Graph));
        var codes = dout.Single().Data;
        Assert.True(codes.Distinct().Count() > 16, string.Join(",", codes));
        Assert.True(codes.Count(v => v is -128 or 127) < codes.Length / 4, string.Join(",", codes));
    }

    /// <summary>Protobuf stops at 2 GB: a model whose weights pass it is written with external data, asked or not.</summary>
    [Theory]
    [InlineData(1_000_000_000, "ternary", false, false)]
    [InlineData(1_000_000_000, "int4", false, true)]
    [InlineData(3_000_000_000, "int8", false, true)]
    [InlineData(1_000_000, "int8", true, true)]
    public void Models_past_2_GB_use_external_data(long parameters, string kind, bool asked, bool external) =>
        Assert.Equal(external, CompileBench.External(parameters, kind, asked));

    [Fact]
    public void An_unknown_kind_is_one_error() =>
        Assert.Contains("'int3' is not one of int8, ternary, int4", Assert.Throws<HwGenException>(() => CompileBench.Kind("int3")).Message);

    /// <summary>Saved with external data, the weights lie in weights.bin and load back to the same tensors.</summary>
    [Fact]
    public void Saving_with_external_data_moves_the_weights_out_and_loads_them_back()
    {
        using var dir = new Support.TempDir();
        Directory.CreateDirectory(dir.File("a"));
        Directory.CreateDirectory(dir.File("b"));
        CompileBench.Save(CompileBench.Mlp(64, 2), dir.File("a/model.onnx"), external: false);
        CompileBench.Save(CompileBench.Mlp(64, 2), dir.File("b/model.onnx"), external: true);
        Assert.False(File.Exists(dir.File("a/weights.bin")));
        Assert.True(new FileInfo(dir.File("b/weights.bin")).Length >= 2 * 64 * 64);
        Assert.True(new FileInfo(dir.File("b/model.onnx")).Length < 64 * 64);
        var a = HwGen.Onnx.OnnxLoader.Load(dir.File("a/model.onnx"));
        var b = HwGen.Onnx.OnnxLoader.Load(dir.File("b/model.onnx"));
        Assert.Equal(a.Initializers.Keys.Order(), b.Initializers.Keys.Order());
        Assert.All(a.Initializers, kv => Assert.Equal(kv.Value.Data, b.Initializers[kv.Key].Data));
    }
}

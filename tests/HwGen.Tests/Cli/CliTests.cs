using HwGen.Cli;
using HwGen.Core;
using HwGen.Rtl.Engines;
using HwGen.Reference;
using HwGen.Tests.Support;

namespace HwGen.Tests.Cli;

public sealed class CliTests
{
    [Fact]
    public void Compile_writes_a_complete_design_directory()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(4, 2, [10, 6], QdqStyle.GemmRelu).Save(dir.File("tiny.onnx"));
        var (exit, stdout, err) = CliRunner.Run("compile", model, "-o", dir.File("out"), "--dump-ir", dir.File("ir"));
        Assert.True(exit == 0, err);
        Assert.Contains("estimated", stdout);
        foreach (var f in new[] { "rtl/hwgen_top.v", "rtl/hwgen_controller.v", "rtl/hwgen_queue.v", "rtl/hwgen_dma.v", "rtl/hwgen_dense_engine.v", "rtl/hwgen_spad.v", "tb/tb_hwgen.v",
                     "tb/memory.bin", "tb/inputs.hex", "tb/expected.hex", "run_verilator.sh", "run_icarus.sh", "manifest.json", "report.md", "model.hwir", "model.consts" })
            Assert.True(File.Exists(Path.Combine(dir.File("out"), f)), f);
        var report = File.ReadAllText(dir.File("out/report.md"));
        Assert.Contains("| l0_gemm | dense | [2x10] | [2x6] |", report);
        Assert.Contains("estimated cycles", report);
        Assert.Equal(Directory.GetFiles(dir.File("ir")).Length, HwGen.Passes.Pipeline.Passes.Count + 1);
    }

    [Fact]
    public void Run_writes_the_golden_output_for_both_semantics()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(5, 3, [8, 5], QdqStyle.MatMulAdd).Save(dir.File("m.onnx"));
        var x = QdqModels.Input(9, 3, 8);
        Npy.Write(dir.File("x.npy"), x);
        Assert.Equal(0, CliRunner.Run("run", model, "--input", dir.File("x.npy"), "--output", dir.File("hw.npy")).Exit);
        Assert.Equal(0, CliRunner.Run("run", model, "--input", dir.File("x.npy"), "--output", dir.File("onnx.npy"), "--semantics", "onnx").Exit);
        var hw = Npy.Read(dir.File("hw.npy"));
        var c = Flow.Compile(model, HwConfig.Default);
        Assert.Equal(HardwareModel.Outputs(c.Graph, [x])[0].Data, hw.Data);
        Assert.Equal([3, 5], hw.Shape);
        Assert.Equal([3, 5], Npy.Read(dir.File("onnx.npy")).Shape);
    }

    [Fact]
    public void Simulate_with_a_new_input_passes_and_a_corrupted_expectation_fails()
    {
        using var dir = new TempDir();
        var model = QdqModels.Mlp(6, 2, [9, 4], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        Assert.Equal(0, CliRunner.Run("compile", model, "-o", dir.File("out")).Exit);
        Npy.Write(dir.File("x.npy"), QdqModels.Input(77, 2, 9));
        var (exit, stdout, _) = CliRunner.Run("simulate", dir.File("out"), "--simulator", "icarus", "--input", dir.File("x.npy"));
        Assert.True(exit == 0, stdout);
        Assert.Contains("PASS", stdout);
        Assert.Contains("(estimate", stdout);

        var path = dir.File("out/tb/expected.hex");
        var lines = File.ReadAllLines(path);
        lines[0] = lines[0][..^2] + (Convert.ToByte(lines[0][^2..], 16) ^ 1).ToString("x2");
        File.WriteAllLines(path, lines);
        (exit, stdout, _) = CliRunner.Run("simulate", dir.File("out"), "--simulator", "icarus");
        Assert.Equal(1, exit);
        Assert.Contains("FAIL", stdout);
        Assert.Contains("mismatches: 1", stdout);
        Assert.Contains("element 0: expected", stdout);
    }

    [Fact]
    public void Bench_schedule_quick_prints_a_table_with_every_solver()
    {
        var (exit, stdout, err) = CliRunner.Run("bench", "schedule", "--quick", "--time", "1");
        Assert.True(exit == 0, err);
        Assert.Contains("| transformer-s16-d32-h2@0.15 | 17 |", stdout);
        Assert.Contains("optimal", stdout);
        Assert.Contains("average share of greedy's non-compulsory traffic removed", stdout);
    }

    /// <summary>No design can beat its roofline: every row's cycles are at least max(MAC bound, memory bound), and the
    /// random MLPs' estimates are simulated elsewhere (RtlSim) to equal the RTL.</summary>
    [Fact]
    public void Bench_roofline_quick_reports_every_case_at_or_above_its_bound()
    {
        var (exit, stdout, err) = CliRunner.Run("bench", "roofline", "--quick");
        Assert.True(exit == 0, err);
        var rows = stdout.Split('\n').Where(l => l.StartsWith("| mlp") || l.StartsWith("| ffn")).ToList();
        Assert.Equal(12, rows.Count);  // 3 models x batch 1, 64 x 4x8, 16x16
        foreach (var row in rows)
        {
            var cells = row.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            long macBound = long.Parse(cells[5]), memBound = long.Parse(cells[6]), cycles = long.Parse(cells[7]);
            Assert.True(cycles >= Math.Max(macBound, memBound), row);
            Assert.Equal((cycles / (double)Math.Max(macBound, memBound)).ToString("F2", System.Globalization.CultureInfo.InvariantCulture), cells[8]);
        }
        // By hand: three 64x64 layers at batch 1 are 12,288 MACs (384 cycles on 32 MACs); they move 3 x (4,096 weights
        // + 9 x 64 parameter bytes) + 64 input + 64 output bytes = 14,144 B, 1,768 beats of 8 bytes.
        var mlp = rows.Single(r => r.StartsWith("| mlp-64x3 | 1 | 4x8 |")).Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["12288", "14144", "384", "1768"], mlp[3..7]);
    }

    [Fact]
    public void Bench_schedule_prove_runs_core_search_where_the_time_limit_left_a_gap()
    {
        // 0.3 s leaves the 35-op graph unproven; 20 s of core-based search proves an optimum no worse than that schedule.
        var (exit, stdout, err) = CliRunner.Run("bench", "schedule", "--graphs", "random-249-35", "--time", "0.3", "--prove", "20");
        Assert.True(exit == 0, err);
        var row = stdout.Split('\n').Single(l => l.StartsWith("| random-249-35 |") && l.Contains("| optimal |"));
        var cells = row.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        long timed = long.Parse(cells[1]), best = long.Parse(cells[2]), bound = long.Parse(cells[3]);
        Assert.Equal(bound, best);
        Assert.True(best < timed, row);
    }

    [Fact]
    public void Compile_falls_back_to_greedy_when_the_exact_model_finds_nothing_in_time_and_says_so()
    {
        using var dir = new TempDir();
        // This scratchpad makes the 24-16-8 MLP spill, so the exact model runs; it finds nothing in 0.0001 s.
        var model = QdqModels.Mlp(5, 4, [24, 16, 8], QdqStyle.GemmRelu).Save(dir.File("m.onnx"));
        File.WriteAllText(dir.File("hw.json"), """{ "arrayRows": 4, "arrayCols": 4, "scratchpadBytes": 320, "portBytes": 4, "ilpTimeLimitSeconds": 0.0001 }""");
        var (exit, stdout, err) = CliRunner.Run("compile", model, "-o", dir.File("out"), "--config", dir.File("hw.json"));
        Assert.True(exit == 0, err);
        Assert.Contains("fell back to greedy", stdout);
        Assert.Contains("fell back to greedy", File.ReadAllText(dir.File("out/report.md")));
        var r = Flow.Simulate(new HwGen.Sim.Icarus(), dir.File("out"));
        Assert.True(r.Passed, r.Log);
    }

    [Fact]
    public void Report_shows_the_schedule_as_a_chart_and_in_numbers()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("hw.json"), """{ "arrayRows": 4, "arrayCols": 4, "scratchpadBytes": 512, "portBytes": 4, "ilpTimeLimitSeconds": 1 }""");
        Assert.Equal(0, CliRunner.Run("compile", Repo.Example("mlp_digits"), "-o", dir.File("out"), "--config", dir.File("hw.json")).Exit);
        var c = HwGen.Cli.Flow.Compile(Repo.Example("mlp_digits"), HwGen.Core.HwConfig.Load(dir.File("hw.json")));
        var segments = HwGen.Scheduling.IlpScheduler.SegmentsOf(c.Design.Tiles.Problem, c.Design.ScratchpadSchedule).Count;
        var svg = File.ReadAllText(dir.File("out/schedule.svg"));
        Assert.Equal(segments, System.Text.RegularExpressions.Regex.Matches(svg, @"<rect [^>]*fill-opacity").Count);
        Assert.Equal(c.Design.ScratchpadSchedule.Steps.Count, System.Text.RegularExpressions.Regex.Matches(svg, @"<title>step \d+:").Count);
        Assert.Contains("<svg", File.ReadAllText(dir.File("out/schedule.html")));
        var report = File.ReadAllText(dir.File("out/report.md"));
        Assert.Contains("## Scratchpad schedule", report);
        Assert.Contains($"non-compulsory {c.Design.Traffic.NonCompulsory} B", report);
    }
}

using System.Text.Json.Nodes;
using HwGen.Core;
using HwGen.Tests.Cli;
using HwGen.Tests.Support;

namespace HwGen.Tests.Regress;

/// <summary>Suites of tiny QDQ MLPs on a small array, simulated in Icarus only, so a whole regress run takes a few seconds.</summary>
public static class TinySuite
{
    /// <summary>A small, fast config: a 2x4 array, greedy schedule.</summary>
    public static JsonObject SmallConfig() => new() { ["arrayRows"] = 2, ["arrayCols"] = 4, ["scratchpadBytes"] = 1024, ["portBytes"] = 4, ["scheduler"] = "greedy" };

    /// <summary>One case: a random MLP (seed picks weights and widths), two random input rows.</summary>
    public static JsonObject Case(TempDir dir, string name, int seed)
    {
        var model = QdqModels.Mlp(seed, 2, [6 + seed % 3, 4 + seed % 2, 3], QdqStyle.GemmRelu).Save(dir.File($"{name}.onnx"));
        return new JsonObject
        {
            ["name"] = name,
            ["model"] = Path.GetFileName(model),
            ["configs"] = new JsonObject { ["default"] = SmallConfig() },
            ["inputs"] = new JsonObject { ["random"] = 2, ["seed"] = seed },
            ["simulators"] = new JsonArray("icarus"),
        };
    }

    /// <summary>Writes suite.json (named <paramref name="suite"/>) with the given cases into dir and returns its path.</summary>
    public static string Write(TempDir dir, IEnumerable<JsonObject> cases, string suite = "tiny", string file = "suite.json")
    {
        var root = new JsonObject { ["suite"] = suite, ["cases"] = new JsonArray([.. cases]) };
        File.WriteAllText(dir.File(file), root.ToJsonString());
        return dir.File(file);
    }

    /// <summary>Two passing cases, a and b.</summary>
    public static string Two(TempDir dir) => Write(dir, [Case(dir, "a", 1), Case(dir, "b", 2)]);

    /// <summary>Runs the CLI and returns its exit code, stdout and the figures JSON it wrote into <paramref name="outDir"/>.</summary>
    public static (int Exit, string Out, JsonObject Figures) Run(string outDir, params string[] args)
    {
        var (exit, stdout, err) = CliRunner.Run([.. args, "-o", outDir]);
        Assert.True(exit is 0 or 1, $"exit {exit}: {err}");
        Assert.Equal("", err);
        return (exit, stdout, JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "figures.json")))!.AsObject());
    }

    public static JsonObject CaseOf(JsonObject figures, string id) =>
        figures["cases"]!.AsArray().Single(c => c!["id"]!.GetValue<string>() == id)!.AsObject();

    public static IEnumerable<string> Ids(JsonObject figures) => figures["cases"]!.AsArray().Select(c => c!["id"]!.GetValue<string>());
}

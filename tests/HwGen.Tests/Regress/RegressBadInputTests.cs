using System.Text.Json.Nodes;
using HwGen.Tests.Support;

namespace HwGen.Tests.Regress;

/// <summary>Bad input to hwgen regress: one error line naming the file and what is wrong, exit 1, and no results directory.</summary>
public sealed class RegressBadInputTests
{
    static void Fails(TempDir dir, string[] args, params string[] mustContain) => CleanFailure.Assert(dir, args, mustContain);

    /// <summary>The tiny two-case suite with <paramref name="edit"/> applied to its JSON.</summary>
    static string Suite(TempDir dir, Action<JsonObject> edit)
    {
        var path = TinySuite.Two(dir);
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root);
        File.WriteAllText(path, root.ToJsonString());
        return path;
    }

    static JsonObject FirstCase(JsonObject root) => root["cases"]![0]!.AsObject();

    [Fact]
    public void Invalid_json()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("suite.json"), "{ \"suite\": \"tiny\", \"cases\": [ ");
        Fails(dir, ["regress", dir.File("suite.json")], "suite.json", "not valid JSON");
    }

    [Fact]
    public void Unknown_key_in_a_case()
    {
        using var dir = new TempDir();
        var suite = Suite(dir, r => FirstCase(r)["modle"] = "a.onnx");
        Fails(dir, ["regress", suite], "suite.json", "cases[0]", "unknown key 'modle'");
    }

    [Fact]
    public void Unknown_tolerance_and_unknown_config_field()
    {
        using var dir = new TempDir();
        var suite = Suite(dir, r => r["tolerances"] = new JsonObject { ["cycle"] = 0.1 });
        Fails(dir, ["regress", suite], "tolerances", "unknown key 'cycle'", "cycles");
        suite = Suite(dir, r => FirstCase(r)["configs"]!["default"]!["arrayRow"] = 2);
        Fails(dir, ["regress", suite], "case 'a'.configs.default", "unknown config field 'arrayRow'");
        suite = Suite(dir, r => FirstCase(r)["configs"]!["default"]!["arrayRows"] = 0);
        Fails(dir, ["regress", suite], "case 'a'.configs.default", "arrayRows must be in [1, 64]");
    }

    [Fact]
    public void Missing_model()
    {
        using var dir = new TempDir();
        var suite = Suite(dir, r => FirstCase(r)["model"] = "gone.onnx");
        Fails(dir, ["regress", suite], "suite.json", "case 'a'.model", "gone.onnx not found");
    }

    [Fact]
    public void Shard_outside_its_count()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        foreach (var spec in new[] { "3/2", "0/2", "1/0", "two/4", "1/2/3" })
            Fails(dir, ["regress", suite, "--shard", spec], "--shard", $"'{spec}'");
    }

    [Fact]
    public void Baseline_from_another_suite()
    {
        using var dir = new TempDir();
        var other = TinySuite.Write(dir, [TinySuite.Case(dir, "a", 1)], suite: "other", file: "other.json");
        Assert.Equal(0, TinySuite.Run(dir.File("first"), "regress", other).Exit);
        var suite = TinySuite.Two(dir);
        Fails(dir, ["regress", suite, "--baseline", dir.File("first/figures.json")], "figures.json", "from suite 'other', not 'tiny'");
    }

    [Fact]
    public void Baseline_that_is_not_a_figures_file_or_is_missing()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        File.WriteAllText(dir.File("base.json"), "{\"cases\": []}");
        Fails(dir, ["regress", suite, "--baseline", dir.File("base.json")], "base.json", "not a baseline written by 'hwgen regress'");
        Fails(dir, ["regress", suite, "--baseline", dir.File("none.json")], "none.json", "baseline not found");
        Fails(dir, ["regress", suite, "--update-baseline"], "--update-baseline needs --baseline");
    }

    [Fact]
    public void Duplicate_case_names_and_duplicate_keys()
    {
        using var dir = new TempDir();
        var suite = Suite(dir, r => r["cases"]![1]!["name"] = "a");
        Fails(dir, ["regress", suite], "two cases are named 'a'");
        File.WriteAllText(suite, File.ReadAllText(suite).Replace("{\"suite\":\"tiny\"", "{\"suite\":\"tiny\",\"suite\":\"again\""));
        Fails(dir, ["regress", suite], "key 'suite' appears twice");
    }

    [Fact]
    public void Merge_of_incomplete_or_mixed_shards()
    {
        using var dir = new TempDir();
        var suite = TinySuite.Two(dir);
        Assert.Equal(0, TinySuite.Run(dir.File("s1"), "regress", suite, "--shard", "1/2").Exit);
        Fails(dir, ["regress", "merge", dir.File("s1/figures.json")], "shard(s) 2/2 missing");
        Fails(dir, ["regress", "merge", dir.File("s1/figures.json"), dir.File("s1/figures.json")], "shard 1/2 is given twice");
        var other = TinySuite.Write(dir, [TinySuite.Case(dir, "z", 3)], suite: "other", file: "other.json");
        Assert.Equal(0, TinySuite.Run(dir.File("o"), "regress", other, "--shard", "2/2").Exit);
        Fails(dir, ["regress", "merge", dir.File("s1/figures.json"), dir.File("o/figures.json")], "from suite 'other'");
    }
}

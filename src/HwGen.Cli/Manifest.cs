using System.Text.Json;
using System.Text.Json.Nodes;
using HwGen.Core;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;
using HwGen.Sim;

namespace HwGen.Cli;

/// <summary>manifest.json: what a design directory holds, for people and for 'hwgen simulate'.</summary>
public static class Manifest
{
    /// <summary>Writes the manifest to <paramref name="stream"/>; the program, one entry per instruction, is written as it is
    /// encoded, not built as a document first (116,876 instructions of tiny_vit_digits at batch 64 are 43 MB of JSON).</summary>
    public static void Write(Compiled c, string modelPath, Stream stream)
    {
        var d = c.Design;
        var cfg = d.Config;
        JsonObject Tensor(Storage s, string role)
        {
            var q = s.Value.Type.Quant!;
            return new JsonObject
            {
                ["role"] = role, ["name"] = s.Value.Name, ["shape"] = new JsonArray(s.Value.Type.Shape.Select(x => (JsonNode)x).ToArray()),
                ["element"] = "int8", ["scale"] = q.Scale, ["zeroPoint"] = q.ZeroPoint,
                ["rows"] = s.Rows, ["features"] = s.Features, ["rowBlocks"] = s.RowBlocks, ["extWord"] = s.ExtWord,
                ["layout"] = $"tiles of {cfg.ArrayRows} rows x {cfg.ArrayCols} features, block by block from word extWord, each padded to a whole word; " +
                             $"a line holds {cfg.ArrayRows} features of one row in a slot of {s.Slot.SlotBytes} bytes; in a tile of a block of m rows, " +
                             $"line g*m + r holds features [g*{cfg.ArrayRows}, (g+1)*{cfg.ArrayRows}) of the tile for row r",
            };
        }
        var root = new JsonObject
        {
            ["generator"] = "hwgen",
            ["model"] = d.ModelName,
            ["modelPath"] = Path.GetFullPath(modelPath),
            ["batch"] = c.Batch,
            ["simLayers"] = c.SimLayers is { } layers ? new JsonArray(layers.Select(l => (JsonNode)l).ToArray()) : null,
            ["config"] = cfg.ToJson(),
            ["top"] = "hwgen_top",
            ["modules"] = new JsonArray(RtlEmitter.ModuleNames(c.Design).Select(m => (JsonNode)new JsonObject { ["name"] = m, ["file"] = $"rtl/{m}.v" }).ToArray()),
            ["parameters"] = new JsonObject(RtlEmitter.Prepare(d).Parameters().Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["schedule"] = new JsonObject
            {
                ["scheduler"] = d.Schedule,
                ["tasks"] = d.Tiles.Problem.Ops.Count,
                ["bytesLoaded"] = d.Traffic.Loaded, ["bytesStored"] = d.Traffic.Stored,
                ["compulsoryBytes"] = d.Traffic.Compulsory, ["nonCompulsoryBytes"] = d.Traffic.NonCompulsory,
                ["greedyNonCompulsoryBytes"] = d.GreedyTraffic.NonCompulsory,
            },
            ["memoryMap"] = new JsonArray(d.Regions.Select(r => (JsonNode)new JsonObject
                { ["name"] = r.Name, ["kind"] = r.Kind, ["word"] = r.Word, ["words"] = r.Words }).ToArray()),
            ["memoryWords"] = d.MemoryWords,
            ["outputElements"] = Testbench.ElementCount(d),
            ["tensors"] = new JsonArray([.. d.InputTensors.Select(s => (JsonNode)Tensor(s, "input")), .. d.OutputTensors.Select(s => (JsonNode)Tensor(s, "output"))]),
            ["program"] = null,   // streamed below, in its place
            ["estimatedCycles"] = d.EstimatedCycles,
            ["offChipBytesMoved"] = d.OffChipBytesMoved,
        };
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            w.WriteStartObject();
            foreach (var (key, value) in root)
            {
                w.WritePropertyName(key);
                if (key != "program")
                {
                    if (value is null) w.WriteNullValue();
                    else value.WriteTo(w);
                    continue;
                }
                w.WriteStartArray();
                for (int n = 0; n < d.Program.Count; n++)
                {
                    var i = d.Program[n];
                    w.WriteStartObject();
                    w.WriteNumber("index", n);
                    w.WriteString("text", i.ToString());
                    w.WriteStartArray("words");
                    foreach (var word in i.Encode()) w.WriteStringValue(word.ToString("x8"));
                    w.WriteEndArray();
                    w.WriteEndObject();
                    if (w.BytesPending > 1 << 16) w.Flush();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
    }

    /// <summary>Reads the model path, config, batch, the number of output elements a simulation must compare and the layers
    /// the design simulates (null: all) back from a design directory's manifest.</summary>
    public static (string ModelPath, HwConfig Config, int? Batch, int OutputElements, IReadOnlyList<string>? SimLayers) Read(string dir)
    {
        var path = Path.Combine(dir, "manifest.json");
        var root = JsonFile.Parse(path, dir, "no manifest.json: not a directory written by 'hwgen compile'");
        T Field<T>(JsonNode? node, string key) => JsonFile.Field<T>(node, key, path);
        var modelPath = Field<string>(root, "modelPath");
        var cfg = HwConfig.FromJson(root?["config"], path, complete: true);
        int? batch = root?["batch"] is null ? null : Field<int>(root, "batch");
        int elements = Field<int>(root, "outputElements");
        if (elements < 1) throw HwGenException.At(path, null, $"manifest.json field 'outputElements' must be at least 1, got {elements}");
        IReadOnlyList<string>? simLayers = root?["simLayers"] is JsonArray a
            ? a.Select(n => n is JsonValue v && v.TryGetValue<string>(out var l) ? l : throw HwGenException.At(path, null, "manifest.json field 'simLayers' must list layer names")).ToList()
            : null;
        return (modelPath, cfg, batch, elements, simLayers);
    }
}

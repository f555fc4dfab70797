using System.Text.Json;
using System.Text.Json.Nodes;
using HwGen.Core;

namespace HwGen.Cli;

/// <summary>Reading the JSON files HwGen writes (manifest.json, shard.json): a missing or damaged file, field or type is one
/// error naming the file.</summary>
public static class JsonFile
{
    /// <summary>Parses <paramref name="path"/>; <paramref name="missing"/> is the error for a file that does not exist.</summary>
    public static JsonNode? Parse(string path, string dir, string missing)
    {
        if (!File.Exists(path)) throw HwGenException.At(dir, null, missing);
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException) { throw HwGenException.At(path, null, $"{Path.GetFileName(path)} is not valid JSON"); }
    }

    /// <summary>Field <paramref name="key"/> of <paramref name="node"/> as a <typeparamref name="T"/>.</summary>
    public static T Field<T>(JsonNode? node, string key, string path)
    {
        try
        {
            return node?[key] is { } v ? v.GetValue<T>() : throw HwGenException.At(path, null, $"{Path.GetFileName(path)} has no '{key}'");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw HwGenException.At(path, null, $"{Path.GetFileName(path)} field '{key}' has the wrong type");
        }
    }
}

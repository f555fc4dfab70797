using HwGen.Core;
using Scriban;
using Scriban.Runtime;

namespace HwGen.Rtl.Emit;

/// <summary>Renders the Scriban templates shipped next to the binary (templates/, testbenches/). Templates only
/// present precomputed values; a missing value is an error (StrictVariables).</summary>
public static class Templates
{
    static readonly Dictionary<string, Template> Cache = [];

    /// <summary>Where the templates of a kind (templates, testbenches) are installed: next to the binary.</summary>
    public static string Folder(string kind) => Path.Combine(AppContext.BaseDirectory, kind);

    /// <summary>Renders with the values of <paramref name="globals"/>: dictionaries by key, typed records by property
    /// (in snake_case, e.g. <c>LineBits</c> as <c>line_bits</c>); later globals add to earlier ones.</summary>
    public static string Render(string kind, string file, params object[] globals)
    {
        Template t;
        lock (Cache)
        {
            var path = Path.Combine(Folder(kind), file);
            if (!Cache.TryGetValue(path, out t!))
            {
                if (!File.Exists(path)) throw new HwGenException($"template {path} is missing from the installation");
                t = Template.Parse(File.ReadAllText(path), path);
                if (t.HasErrors) throw new HwGenException($"template {path}: {string.Join("; ", t.Messages)}");
                Cache[path] = t;
            }
        }
        var so = new ScriptObject();
        foreach (var g in globals)
        {
            if (g is IReadOnlyDictionary<string, object> dict)
                foreach (var (k, v) in dict) so.SetValue(k, v, false);
            else so.Import(g, renamer: StandardMemberRenamer.Default);
        }
        var ctx = new TemplateContext { StrictVariables = true, MemberRenamer = StandardMemberRenamer.Default };
        ctx.PushGlobal(so);
        return t.Render(ctx);
    }
}

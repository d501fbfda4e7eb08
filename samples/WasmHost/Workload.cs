using System.Globalization;
using System.Text;

/// <summary>
/// The module WasmHost runs by default: a plugin generated from WebAssembly text, large enough that
/// compiling it takes Cranelift long enough to see (about a second on 2 cores), so the first run shows
/// the compile and the second the saving. Deterministic: the same text, the same bytes, the same key.
/// </summary>
internal static class Workload
{
    public const string Name = "plugin.wasm (generated)";

    public const string Function = "run";

    public const string Argument = "100";

    private const int Functions = 8000;

    private const int Rounds = 3; // unrolled steps per loop iteration

    /// <summary>The module's text: <c>run(n)</c> folds n rounds of every generated function into one checksum.</summary>
    public static string Text()
    {
        var text = new StringBuilder(Functions * Rounds * 600);
        text.Append("(module\n");
        for (int f = 0; f < Functions; f++)
        {
            // Each function: a small loop of mixed arithmetic and branches, different constants per function.
            text.Append(CultureInfo.InvariantCulture, $"  (func $f{f} (param $x i64) (param $n i32) (result i64) (local $i i32)\n");
            text.Append("    (block $done (loop $next\n");
            text.Append("      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n");
            for (int r = 0; r < Rounds; r++)
            {
                int c = (f * Rounds) + r;
                text.Append(CultureInfo.InvariantCulture, $"      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const {(c * 2654435761L % 1000003) | 1})) (i64.const {c + 7})))\n");
                text.Append(CultureInfo.InvariantCulture, $"      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const {(c % 31) + 1}))))\n");
                text.Append(CultureInfo.InvariantCulture, $"      (if (i64.eqz (i64.rem_u (local.get $x) (i64.const {(c % 13) + 3})))\n");
                text.Append(CultureInfo.InvariantCulture, $"        (then (local.set $x (i64.rotl (local.get $x) (i64.const {(c % 17) + 1}))))\n");
                text.Append(CultureInfo.InvariantCulture, $"        (else (local.set $x (i64.sub (local.get $x) (i64.extend_i32_u (local.get $i))))))\n");
            }

            text.Append("      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n");
            text.Append("      (br $next)))\n");
            text.Append("    (local.get $x))\n");
        }

        text.Append("  (func (export \"run\") (param $n i32) (result i64) (local $x i64)\n");
        text.Append("    (local.set $x (i64.const 1))\n");
        for (int f = 0; f < Functions; f++)
        {
            text.Append(CultureInfo.InvariantCulture, $"    (local.set $x (call $f{f} (local.get $x) (local.get $n)))\n");
        }

        text.Append("    (local.get $x)))\n");
        return text.ToString();
    }
}

"""The service's web page (``GET /``): upload a PNG and a WAV, see the answer. No external scripts."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mmcourse: digit from an image and a voice</title>
<style>
 body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
 label { display: block; margin: 0.8em 0; }
 #answer { font-size: 2em; font-weight: bold; }
 pre { background: #f4f4f4; padding: 0.6em; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>Which digit?</h1>
<p>Upload a handwritten digit (a 28x28 PNG) and a spoken digit (a WAV of at most 2 s).
The service fuses both and answers.</p>
<form id="form">
 <label>Image (PNG): <input type="file" id="image" name="image" accept="image/png" required></label>
 <label>Audio (WAV): <input type="file" id="audio" name="audio" accept="audio/wav,.wav" required></label>
 <button type="submit" id="send">Predict</button>
</form>
<p>Answer: <output id="answer">-</output></p>
<pre id="result"></pre>
<script>
document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData();
  data.append("image", document.getElementById("image").files[0]);
  data.append("audio", document.getElementById("audio").files[0]);
  const answer = document.getElementById("answer"), result = document.getElementById("result");
  answer.textContent = "...";
  try {
    const response = await fetch("predict", { method: "POST", body: data });
    const body = await response.json();
    if (response.ok) {
      answer.textContent = body.label + " (" + (100 * body.probabilities[body.class]).toFixed(1) + " %)";
    } else {
      answer.textContent = "error " + response.status;
    }
    result.textContent = JSON.stringify(body, null, 1);
  } catch (err) {
    answer.textContent = "error";
    result.textContent = String(err);
  }
});
</script>
</body>
</html>
"""

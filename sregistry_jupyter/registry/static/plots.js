// Draws each figure of the page from the JSON the server put beside it, with the plotly.js it serves.
function drawFigures() {
  for (const target of document.querySelectorAll("[data-figure]")) {
    const source = document.getElementById(target.dataset.figure);
    if (!source) continue;
    const figure = JSON.parse(source.textContent);
    const layout = { ...figure.layout, autosize: true };
    delete layout.width;
    window.Plotly.newPlot(target, figure.data, layout, { responsive: true, displaylogo: false });
  }
}

drawFigures();

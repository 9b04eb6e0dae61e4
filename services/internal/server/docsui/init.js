// Points Swagger UI at this service's document; relative, so it works behind a proxy that
// serves the service under a path prefix. validatorUrl null: no call to validator.swagger.io.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "../openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
